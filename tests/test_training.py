"""Training runs end to end: resume equals uninterrupted, Ctrl-C and NaN leave a checkpoint."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.errors import NonFiniteLoss
from pinnsketch.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
BURGERS = ROOT / "problems" / "burgers.yaml"
SOFT = ["model.hard_constraints=false", "train.dtype=float64", "sampling.resample_every=7",
        "sampling.lbfgs_resample_every=10", "train.lr_decay=0.9", "train.lr_decay_every=5"]


def _config(adam: int, lbfgs: int, extra: list[str] = ()):
    return pinnsketch.load_config(BURGERS, tiny_overrides(adam, lbfgs) + SOFT + list(extra))


def _final_state(run_dir: Path) -> dict[str, torch.Tensor]:
    return RunDir(run_dir).load_checkpoint()["trainer"]["model"]


def _assert_same_models(a: Path, b: Path) -> None:
    state_a, state_b = _final_state(a), _final_state(b)
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


def test_resume_equals_uninterrupted(tmp_path):
    full = pinnsketch.train(_config(30, 25), out=tmp_path / "full")
    # The same run, stopped after 20 Adam steps and continued to the full budget.
    pinnsketch.train(_config(20, 0), out=tmp_path / "part")
    resumed = pinnsketch.train(_config(30, 25), resume=tmp_path / "part")
    _assert_same_models(tmp_path / "full", tmp_path / "part")
    assert resumed.summary["rel_l2"] == full.summary["rel_l2"]
    steps_full = [r["step"] for r in full.metrics]
    assert [r["step"] for r in resumed.metrics] == steps_full
    assert [r["rel_l2"] for r in resumed.metrics] == [r["rel_l2"] for r in full.metrics]


def test_ctrl_c_saves_checkpoint_and_resume_completes(tmp_path, monkeypatch):
    full = pinnsketch.train(_config(30, 10), out=tmp_path / "full")
    original = Trainer.adam_step

    def interrupted_step(self, stop=False):
        out = original(self, stop)
        if self.step == 13:
            os.kill(os.getpid(), signal.SIGINT)  # the handler only sets a flag
        return out

    monkeypatch.setattr(Trainer, "adam_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        pinnsketch.train(_config(30, 10), out=tmp_path / "cut")
    monkeypatch.setattr(Trainer, "adam_step", original)
    folder = RunDir(tmp_path / "cut")
    assert folder.load_checkpoint()["trainer"]["step"] == 13
    assert folder.read_summary()["status"] == "interrupted"
    assert folder.read_metrics()[-1]["step"] == 13
    pinnsketch.train(_config(30, 10), resume=tmp_path / "cut")
    _assert_same_models(tmp_path / "full", tmp_path / "cut")


def test_non_finite_loss_names_step_and_term_and_keeps_checkpoint(tmp_path, monkeypatch):
    original = Trainer.losses

    def poisoned(self, adam_phase=False):
        losses = original(self, adam_phase)
        if self.step == 14:
            losses["bc"] = losses["bc"] * float("nan")
        return losses

    monkeypatch.setattr(Trainer, "losses", poisoned)
    with pytest.raises(NonFiniteLoss) as info:
        pinnsketch.train(_config(30, 0), out=tmp_path / "nan")
    assert info.value.step == 14 and info.value.term == "bc"
    folder = RunDir(tmp_path / "nan")
    checkpoint = folder.load_checkpoint()["trainer"]
    assert checkpoint["step"] == 10  # the last good one, not overwritten
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values())
    assert folder.read_summary()["status"] == "diverged"
    # The step-0 row and the evaluation at 10; the NaN of step 14 is read at step 20.
    assert [r["step"] for r in folder.read_metrics()] == [0, 10]


def test_lbfgs_reports_why_it_stopped(tmp_path):
    # A huge gradient tolerance makes L-BFGS stop at once; the reason must say so.
    run = pinnsketch.train(_config(5, 50, ["train.lbfgs_tolerance_grad=1e3",
                                           "train.quasi_newton=lbfgs"]),
                           out=tmp_path / "tol")
    reason = run.summary["stop_reasons"]["lbfgs"]
    assert reason.startswith("gradient tolerance") and run.summary["lbfgs_steps"] == 0
    assert run.summary["stop_reasons"]["adam"] == "iterations reached (5)"


def test_trainer_gradients_equal_direct_autograd(tmp_path):
    # The optimiser sees ∇ Σ w_τ L_τ: check one step's gradient against autograd of the total.
    config = _config(1, 0, ["train.weights={bc: 3.0, ic: 0.5}"])
    problem = pinnsketch.load_problem(config)
    from pinnsketch.training.build import build_model

    model = build_model(config, problem).double()
    trainer = Trainer(problem, model, train=config.train, sampling=config.sampling,
                      terms=("pde", "bc", "ic"), observations=None,
                      device=torch.device("cpu"), dtype=torch.float64)
    losses = trainer.losses()
    total = losses["pde"] + 3.0 * losses["bc"] + 0.5 * losses["ic"]
    expected = torch.autograd.grad(total, list(model.parameters()))
    trainer.adam_step()
    for p, g in zip(model.parameters(), expected):
        torch.testing.assert_close(p.grad, g, rtol=1e-12, atol=1e-14)


def test_loaded_run_predicts_what_was_evaluated(tmp_path):
    run = pinnsketch.train(_config(15, 5), out=tmp_path / "r")
    loaded = pinnsketch.load_run(tmp_path / "r")
    grid, _ = loaded.problem.evaluation_grid()
    prediction = loaded.predict(grid)
    reference = loaded.problem.reference(grid)
    rel = np.linalg.norm(prediction - reference) / np.linalg.norm(reference)
    assert rel == pytest.approx(run.summary["rel_l2"], rel=1e-12)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    for key in ("rel_l2", "steps", "wall_s", "s_per_step", "seed", "versions"):
        assert key in summary


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_zero(tmp_path, monkeypatch):
    full = pinnsketch.train(_config(30, 10), out=tmp_path / "full")
    original = Trainer.adam_step

    def killed(self, stop=False):  # an exception no handler saves on (as a SIGKILL)
        if self.step == 3:
            raise SystemExit("killed")
        return original(self, stop)

    monkeypatch.setattr(Trainer, "adam_step", killed)
    with pytest.raises(SystemExit):
        pinnsketch.train(_config(30, 10, ["train.checkpoint_every=1000"]), out=tmp_path / "cut")
    monkeypatch.setattr(Trainer, "adam_step", original)
    assert RunDir(tmp_path / "cut").load_checkpoint()["trainer"]["step"] == 0
    resumed = pinnsketch.train(_config(30, 10, ["train.checkpoint_every=1000"]),
                               resume=tmp_path / "cut")
    _assert_same_models(tmp_path / "full", tmp_path / "cut")
    assert resumed.summary["rel_l2"] == full.summary["rel_l2"]
