"""Curriculum regularisation (Krishnapriyan et al. 2021): the ramped option follows its
formula step by step, the residual uses it, the target returns for everything after the
ramp (and after an interrupted run), resume is exact, and bad set-ups are config errors."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.training.build import build_trainer
from pinnsketch.training.curriculum import Curriculum
from pinnsketch.training.schedule import Schedule

ROOT = Path(__file__).resolve().parents[1]


def _config(extra=()):
    return pinnsketch.load_config(ROOT / "problems" / "convection.yaml",
                                  tiny_overrides(10, 3, eval_every=5)
                                  + ["output.plots=false", "train.dtype=float64",
                                     "train.quasi_newton=lbfgs", *extra])


def test_the_option_ramps_linearly_to_its_target():
    problem = build_trainer(_config()).problem
    ramp = Curriculum(problem, "beta", 2.0, 8)
    assert problem.options.beta == 40.0  # built, the problem is at its target
    for k in range(12):
        assert ramp.apply(k) == pytest.approx(2.0 + 38.0 * min(1.0, k / 8), rel=1e-15)
        assert problem.options.beta == ramp.apply(k)
    ramp.apply(3)
    ramp.finish()
    assert problem.options.beta == 40.0


def test_each_adam_step_sees_the_ramped_option_and_the_rest_the_target():
    config = _config(["train.curriculum.option=beta", "train.curriculum.start=1.0",
                      "train.curriculum.steps=4", "train.adam_steps=6"])
    trainer = build_trainer(config)
    schedule = Schedule(config.train, config.sampling, trainer)
    seen, original = [], trainer.adam_step

    def spy(stop=False):
        seen.append(trainer.problem.options.beta)
        # The residual is that of the ramped β: u_t + β u_x at this step.
        points = trainer.batch["pde"]
        du = torch.autograd.grad(trainer.model(points).sum(), points, retain_graph=True)[0]
        direct = (du[:, 1] + seen[-1] * du[:, 0]).detach()
        residual = trainer.problem.pde_residual(trainer.model, points).detach()
        torch.testing.assert_close(residual, direct, rtol=1e-13, atol=1e-13)
        return original(stop)

    trainer.adam_step = spy
    schedule.run(_NoInterrupt(), lambda phase, losses: None, lambda n: None)
    assert seen == pytest.approx([1.0 + 39.0 * min(1.0, k / 4) for k in range(6)], rel=1e-15)
    assert trainer.problem.options.beta == 40.0  # L-BFGS and evaluations: the target


class _NoInterrupt:
    requested = False


def test_an_interrupted_ramp_leaves_the_target_and_resumes_exactly(tmp_path):
    extra = ["train.curriculum.option=beta", "train.curriculum.start=5.0",
             "train.curriculum.steps=8", "train.lbfgs_steps=0"]
    full = pinnsketch.train(_config(extra), out=tmp_path / "a")
    pinnsketch.train(_config(extra + ["train.adam_steps=5"]), out=tmp_path / "b")
    part = pinnsketch.train(_config(extra), resume=tmp_path / "b")
    for p, q in zip(full.model.parameters(), part.model.parameters()):
        assert torch.equal(p, q)
    assert part.problem.options.beta == 40.0 and math.isfinite(full.summary["rel_l2"])


def test_curriculum_config_errors():
    cases = {"train.curriculum.option=gamma": "option 'gamma' must be a float option of "
                                              "Convection \\(options: beta\\)",
             "train.curriculum.steps=0": "train.curriculum.steps: got 0"}
    for override, match in cases.items():
        extra = ["train.curriculum.option=beta", override]
        with pytest.raises(pinnsketch.ConfigError, match=match):
            pinnsketch.check_config(_config(extra))
    with pytest.raises(pinnsketch.ConfigError, match="train.curriculum.start: -1.0 is not a "
                                                     "valid beta"):
        pinnsketch.check_config(_config(["train.curriculum.option=beta",
                                         "train.curriculum.start=-1.0"]))
