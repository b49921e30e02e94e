"""The dense quasi-Newton phase inside a run: config, memory guard, phase names, resume."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch import ConfigError
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.training.build import build_trainer
from pinnsketch.training.checks import parameter_count

ROOT = Path(__file__).resolve().parents[1]
BURGERS = ROOT / "problems" / "burgers.yaml"
DENSE = ["train.quasi_newton=ssbroyden2", "train.dtype=float64",
         "sampling.lbfgs_resample_every=10"]


def _config(adam: int, dense: int, extra=()):
    return pinnsketch.load_config(BURGERS, tiny_overrides(adam, dense) + DENSE + list(extra))


def test_parameter_count_matches_the_built_network():
    config = _config(5, 5, ["model.width=7", "model.depth=3"])
    trainer = build_trainer(config)
    assert parameter_count(config, trainer.problem) == sum(p.numel() for p in trainer.parameters)


def test_the_memory_guard_is_a_config_error_naming_the_size(tmp_path):
    config = _config(5, 5, ["model.width=200", "model.depth=4", "train.max_hessian_mib=64"])
    n = 3 * 200 + 3 * 201 * 200 + 201  # (x, t) -> 4 hidden layers of 200 -> u
    mib = n * n * 8 / 2 ** 20
    with pytest.raises(ConfigError, match=rf"train.quasi_newton: 'ssbroyden2' keeps a dense "
                                          rf"inverse Hessian of {n} parameters \({mib:.0f} MiB\)"):
        pinnsketch.train(config, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()
    # Also with no iterations of that phase: the optimiser would still be built.
    with pytest.raises(ConfigError, match="keeps a dense.*train.lbfgs_steps is 0, but the "
                                          "phase's optimiser is built all the same"):
        pinnsketch.check_config(_config(5, 0, ["model.width=200", "model.depth=4",
                                               "train.max_hessian_mib=64"]))


def test_dense_phase_runs_names_itself_and_resumes_bit_for_bit(tmp_path):
    full = pinnsketch.train(_config(10, 25), out=tmp_path / "full")
    assert full.summary["stop_reasons"] == {"adam": "iterations reached (10)",
                                            "ssbroyden2": "iterations reached (25)"}
    phases = [r["phase"] for r in full.metrics]
    assert phases[0] == "adam" and phases[-1] == "ssbroyden2"
    # the dense phase lowers the loss below where Adam left it
    adam_end = [r for r in full.metrics if r["phase"] == "adam"][-1]["loss_total"]
    assert full.metrics[-1]["loss_total"] < adam_end
    # stopped inside the dense phase (after a point redraw at 10), then continued
    pinnsketch.train(_config(10, 15), out=tmp_path / "part")
    pinnsketch.train(_config(10, 25), resume=tmp_path / "part")
    a, b = (RunDir(tmp_path / n).load_checkpoint()["trainer"] for n in ("full", "part"))
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    H = lambda s: s["lbfgs"]["state"][0]["H"]  # noqa: E731
    assert torch.equal(H(a), H(b))


def test_a_huge_gradient_tolerance_stops_the_dense_phase_with_its_reason(tmp_path):
    run = pinnsketch.train(_config(5, 20, ["train.lbfgs_tolerance_grad=1e3"]),
                           out=tmp_path / "tol")
    reason = run.summary["stop_reasons"]["ssbroyden2"]
    assert reason.startswith("gradient tolerance") and run.summary["lbfgs_steps"] == 0


def test_resume_extends_the_last_phase_and_refuses_to_rerun_adam(tmp_path):
    pinnsketch.train(_config(10, 5), out=tmp_path / "r")
    before = (tmp_path / "r" / "checkpoint.pt").read_bytes()
    with pytest.raises(ConfigError, match=r"train.adam_steps: got 20, but the run to resume "
                                          r"has taken 10 Adam steps and 5 ssbroyden2"):
        pinnsketch.train(_config(20, 5), resume=tmp_path / "r")
    assert (tmp_path / "r" / "checkpoint.pt").read_bytes() == before
    run = pinnsketch.train(_config(10, 15), resume=tmp_path / "r")
    assert run.summary["stop_reasons"] == {"adam": "iterations reached (10)",
                                           "ssbroyden2": "iterations reached (15)"}
    assert run.summary["steps"] == 25
