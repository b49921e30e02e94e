"""Findings from a run's record (the phase after Adam's stop, the pde residual over time),
against synthetic records whose answer is known, and ``diagnose --rerun`` end to end."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.cli import main as cli_main
from pinnsketch.diagnosis.findings import Thresholds
from pinnsketch.diagnosis.run_rules import causality_violation, optimizer_stall
from pinnsketch.runner.remedy import remedy_overrides
from pinnsketch.training.evaluation import residual_by_time

ROOT = Path(__file__).resolve().parents[1]
TH = Thresholds()


def _summary(reason, gradient, parameters=1000, phase="lbfgs"):
    return {"stop_reasons": {"adam": "iterations reached (10)", phase: reason},
            "stop_gradient": gradient, "steps": 40, "lbfgs_steps": 30,
            "parameters": parameters}


def test_an_early_line_search_stop_with_a_large_gradient_is_a_stall():
    (finding,) = optimizer_stall(_summary("step tolerance: line search step below", 3e-3), TH)
    assert finding.kind == "optimizer_stall" and finding.remedy == ("train.quasi_newton=ssbroyden2",)
    assert finding.evidence["max_gradient"] == 3e-3 and "3e-03" in finding.message.replace("0.003", "3e-03")
    # A dense phase that stalls: redraw its points; a network too big for H: no remedy.
    (dense,) = optimizer_stall(_summary("line search failure: no decrease", 1e-2,
                                        phase="ssbroyden2"), TH)
    assert dense.remedy == ("sampling.lbfgs_resample_every=500",)
    (big,) = optimizer_stall(_summary("step tolerance", 1e-2, parameters=20000), TH)
    assert big.remedy == () and "MiB" in big.suggestion


@pytest.mark.parametrize("summary", [
    _summary("step tolerance: line search step below", 1e-8),   # the gradient is small
    _summary("gradient tolerance: max |∇L| <= 1e-9", 1e-2),     # a minimum, not a stall
    _summary("loss tolerance: loss change below", 1e-2),
    {"stop_reasons": {"adam": "iterations reached (10)", "lbfgs": "iterations reached (5)"},
     "stop_gradient": None},
])
def test_other_stops_are_not_stalls(summary):
    assert optimizer_stall(summary, TH) == []


def test_early_times_left_unfitted_are_a_causality_violation():
    profile = [1.0, 0.5, 0.05, 0.02, 0.01, 0.01, 0.01, 0.01]
    metrics = [{"step": 10, "pde_by_time": [0.1] * 8}, {"step": 20, "pde_by_time": profile}]
    (finding,) = causality_violation(metrics, 0, TH)
    assert finding.evidence["ratio"] == pytest.approx(0.75 / 0.01)
    tolerance = math.log(1e3) / (sum(profile) / 8 * 32)
    assert finding.remedy == ("train.causal.chunks=32", f"train.causal.tolerance={tolerance:.3g}")
    (on,) = causality_violation(metrics, 16, TH)  # causal training already on: its tolerance
    assert on.remedy == (f"train.causal.tolerance={tolerance:.3g}",)
    # The reverse profile (late times worse), a flat one, or no profile: nothing.
    assert causality_violation([{"step": 20, "pde_by_time": profile[::-1]}], 0, TH) == []
    assert causality_violation([{"step": 20, "pde_by_time": [1.0] * 8}], 0, TH) == []
    assert causality_violation([{"step": 20}], 0, TH) == []


def test_remedy_overrides_keep_the_first_value_of_each_key():
    findings = [{"mechanism": "imbalance", "remedy": ["train.weights.bc=10"]},
                {"mechanism": "trivial_solution", "remedy": ["train.weights.bc=1",
                                                              "train.weights.ic=1"]}]
    applied, skipped = remedy_overrides(findings)
    assert applied == ["train.weights.bc=10", "train.weights.ic=1"]
    assert skipped == ["train.weights.bc=1 (trivial_solution; kept train.weights.bc=10 of imbalance)"]


def test_a_stalled_quasi_newton_phase_is_found_and_rerun_with_its_remedy(tmp_path, capsys):
    """A tolerance_change so large that torch's L-BFGS stops at its first step with the
    gradient far from zero: the record says so, the finding names the dense phase, and
    --rerun trains with it and reports both errors."""
    config = pinnsketch.load_config(
        ROOT / "problems" / "burgers.yaml",
        tiny_overrides(10, 20, eval_every=5) + [
            "train.quasi_newton=lbfgs", "train.lbfgs_tolerance_change=1e3",
            "model.hard_constraints=false", "monitor.enabled=true", "monitor.every=1",
            "output.plots=false", "train.dtype=float64"])
    run = pinnsketch.train(config, out=tmp_path / "run")
    assert run.summary["stop_reasons"]["lbfgs"].startswith("step tolerance")
    assert run.summary["stop_gradient"] > 1e-6
    assert len(run.metrics[-1]["pde_by_time"]) == 8  # an evolution problem: the profile
    data = json.loads((tmp_path / "run" / "diagnosis.json").read_text())
    stall = [f for f in data["findings"] if f["mechanism"] == "optimizer_stall"]
    assert stall and stall[0]["remedy"] == ["train.quasi_newton=ssbroyden2"]
    assert cli_main(["diagnose", str(tmp_path / "run"), "--rerun", "--out",
                     str(tmp_path / "fixed")]) == 0
    printed = capsys.readouterr().out
    assert "remedy: --set train.quasi_newton=ssbroyden2" in printed and "rel L2:" in printed
    result = json.loads((tmp_path / "fixed" / "remedy.json").read_text())
    assert result["rel_l2_before"] == run.summary["rel_l2"]
    fixed = json.loads((tmp_path / "fixed" / "summary.json").read_text())
    assert result["rel_l2_after"] == fixed["rel_l2"]
    rerun = pinnsketch.load_config(tmp_path / "fixed" / "config.yaml")
    assert rerun.train.quasi_newton == "ssbroyden2" and rerun.train.adam_steps == 10
    assert cli_main(["diagnose", str(tmp_path / "run"), "--out", str(tmp_path / "x")]) == 2


def test_the_residual_profile_is_the_mean_square_per_time_slab():
    class Known:
        def pde_residual(self, model, points):
            return points[:, 0] * (1 + points[:, 1])     # r = x (1 + t)

    t = torch.tensor([0.05, 0.1, 0.3, 0.35, 0.9], dtype=torch.float64)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    profile = residual_by_time(Known(), None, torch.stack([x, t], dim=1), (0.0, 1.0), slabs=4)
    r2 = (x * (1 + t)) ** 2
    assert profile[0] == pytest.approx(float(r2[:2].mean()), rel=1e-14)
    assert profile[1] == pytest.approx(float(r2[2:4].mean()), rel=1e-14)
    assert profile[2] is None and profile[3] == pytest.approx(float(r2[4]), rel=1e-14)
