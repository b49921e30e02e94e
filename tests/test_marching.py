"""Time marching (growing windows): the stage and window follow their formula, every Adam
step's pde and bc points lie in its window and are redrawn when a stage begins, the phase
after Adam sees the whole interval, an interrupted run resumes exactly, and bad set-ups are
config errors."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.training.build import build_trainer
from pinnsketch.training.marching import TimeMarching
from pinnsketch.training.schedule import Schedule
from pinnsketch.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def _config(extra=(), problem="convection"):
    return pinnsketch.load_config(ROOT / "problems" / f"{problem}.yaml",
                                  tiny_overrides(12, 4, eval_every=4)
                                  + ["output.plots=false", "train.dtype=float64",
                                     "train.quasi_newton=lbfgs", *extra])


def test_stages_divide_the_adam_phase_equally():
    marching = TimeMarching(3, 12)
    assert [marching.stage(k) for k in range(14)] == [0] * 4 + [1] * 4 + [2] * 6
    assert [marching.fraction(k) for k in (0, 4, 8, 12)] == [1 / 3, 2 / 3, 1.0, 1.0]
    assert [k for k in range(14) if marching.starts_stage(k)] == [4, 8]
    uneven = TimeMarching(4, 10)  # k·K // S: stages of 3, 2, 3, 2 steps
    assert [uneven.stage(k) for k in range(10)] == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
    assert TimeMarching(2, 0).fraction(0) == 1.0  # no Adam phase: the whole interval
    with pytest.raises(ValueError, match="windows 0 must be >= 1"):
        TimeMarching(0, 10)


def test_each_adam_step_draws_in_its_window_and_lbfgs_in_the_whole_interval():
    config = _config(["train.time_marching.windows=3", "sampling.lbfgs_resample_every=2"])
    trainer = build_trainer(config)
    t0, t1 = trainer.problem.domain.time
    seen, original = [], trainer.adam_step

    def spy(stop=False):
        out = original(stop)  # the batch it used (a redraw happens at the step's start)
        seen.append({t: trainer.batch[t][:, -1].detach().clone() for t in ("pde", "bc", "ic")})
        return out

    trainer.adam_step = spy
    Schedule(config.train, config.sampling, trainer).run(
        _NoInterrupt(), lambda phase, losses: None, lambda n: None)
    marching = TimeMarching(3, 12)
    for k, times in enumerate(seen):
        limit = t0 + marching.fraction(k) * (t1 - t0)
        for term in ("pde", "bc"):
            assert times[term].min() >= t0 and times[term].max() <= limit + 1e-15
        assert torch.all(times["ic"] == t0)
        if marching.starts_stage(k):  # fresh points reach into the new part of the window
            previous = t0 + marching.fraction(k - 1) * (t1 - t0)
            assert not torch.equal(times["pde"], seen[k - 1]["pde"])
            assert times["pde"].max() > previous
        elif k:
            assert torch.equal(times["pde"], seen[k - 1]["pde"])  # no redraw within a stage
    # The L-BFGS redraw after 2 iterations: points over the whole interval.
    final = trainer.batch["pde"][:, -1].detach()
    assert trainer.lbfgs_done == 4 and final.max() > t0 + 2 / 3 * (t1 - t0)


class _NoInterrupt:
    requested = False


def test_an_interrupted_marching_run_resumes_exactly(tmp_path, monkeypatch):
    extra = ["train.time_marching.windows=3", "monitor.enabled=true", "monitor.every=2"]
    full = pinnsketch.train(_config(extra), out=tmp_path / "full")
    original = Trainer.adam_step

    def interrupted_step(self, stop=False):
        out = original(self, stop)
        if self.step == 6:  # inside the second stage
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, "adam_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        pinnsketch.train(_config(extra), out=tmp_path / "cut")
    monkeypatch.setattr(Trainer, "adam_step", original)
    resumed = pinnsketch.train(_config(extra), resume=tmp_path / "cut")
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)
    assert resumed.summary["rel_l2"] == full.summary["rel_l2"]


def test_time_marching_config_errors():
    with pytest.raises(pinnsketch.ConfigError, match="time_marching.windows: got 3, but "
                                                     "Poisson is steady"):
        pinnsketch.check_config(_config(["train.time_marching.windows=3"], problem="poisson"))
    with pytest.raises(pinnsketch.ConfigError, match="must be <= train.adam_steps \\(12\\)"):
        pinnsketch.check_config(_config(["train.time_marching.windows=13"]))
