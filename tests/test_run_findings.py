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
from pinnsketch.diagnosis import diagnose
from pinnsketch.diagnosis.run_rules import (causality_violation, ill_conditioning,
                                            optimizer_stall, second_order_phase,
                                            spectral_bias)
from pinnsketch.runner.remedy import remedy_overrides, rerun_with_remedies
from pinnsketch.training.trainer import Trainer
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


def stalled_lbfgs_config():
    """Monitored float64 Burgers whose L-BFGS stops at its first step (a tolerance_change
    so large that any step passes it): an optimizer stall with the gradient far from zero."""
    return pinnsketch.load_config(
        ROOT / "problems" / "burgers.yaml",
        tiny_overrides(10, 20, eval_every=5) + [
            "train.quasi_newton=lbfgs", "train.lbfgs_tolerance_change=1e3",
            "model.hard_constraints=false", "monitor.enabled=true", "monitor.every=1",
            "output.plots=false", "train.dtype=float64"])


def test_a_stalled_quasi_newton_phase_is_found_and_rerun_with_its_remedy(tmp_path, capsys):
    """A tolerance_change so large that torch's L-BFGS stops at its first step with the
    gradient far from zero: the record says so, the finding names the dense phase, and
    --rerun trains with it and reports both errors."""
    config = stalled_lbfgs_config()
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


def test_an_interrupted_rerun_is_continued_exactly_and_a_finished_one_is_kept(tmp_path,
                                                                             monkeypatch):
    """Ctrl-C during ``diagnose --rerun`` leaves a checkpoint; the same command again
    continues it and ends where an uninterrupted rerun ends, bit for bit. A finished rerun
    is never trained over."""
    config = stalled_lbfgs_config()
    pinnsketch.train(config, out=tmp_path / "run")
    whole = rerun_with_remedies(tmp_path / "run", tmp_path / "whole")
    original = Trainer.adam_step

    def interrupted_step(self, stop=False):
        out = original(self, stop)
        if self.step == 6:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(Trainer, "adam_step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        rerun_with_remedies(tmp_path / "run", tmp_path / "cut")
    monkeypatch.setattr(Trainer, "adam_step", original)
    assert (tmp_path / "cut" / "checkpoint.pt").is_file()
    assert not (tmp_path / "cut" / "remedy.json").exists()
    continued = rerun_with_remedies(tmp_path / "run", tmp_path / "cut")
    assert continued["overrides"] == whole["overrides"] == ["train.quasi_newton=ssbroyden2"]
    assert continued["rel_l2_after"] == whole["rel_l2_after"]
    summaries = [json.loads((tmp_path / name / "summary.json").read_text())
                 for name in ("whole", "cut")]
    assert summaries[0]["steps"] == summaries[1]["steps"] > 6
    assert summaries[0]["stop_reasons"] == summaries[1]["stop_reasons"]
    with pytest.raises(pinnsketch.ConfigError, match="holds a finished rerun"):
        rerun_with_remedies(tmp_path / "run", tmp_path / "cut")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(pinnsketch.ConfigError, match="not empty"):
        rerun_with_remedies(tmp_path / "run", tmp_path / "other")


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


def _adam_record(losses, hessian=None):
    return [{"step": 100 * i, "phase": "adam", "loss_total": v,
             **({"hessian_top": hessian} if hessian else {})} for i, v in enumerate(losses)]


ADAM_ONLY = {"adam_steps": 700, "lbfgs_steps": 0, "parameters": 1000,
             "stop_reasons": {"adam": "iterations reached (700)"}}


def test_a_slowly_falling_first_order_run_is_ill_conditioned():
    # Second half of the records (steps 400..700): 0.4 → 0.2, 0.30 decades, still falling.
    record = _adam_record([10.0, 2.0, 1.0, 0.5, 0.4, 0.3, 0.25, 0.2],
                          hessian={"pde": [5e5, 1e5], "bc": [300.0]})
    (finding,) = ill_conditioning(record, ADAM_ONLY, TH)
    assert finding.kind == "ill_conditioning"
    assert finding.evidence["decades"] == pytest.approx(math.log10(0.4 / 0.2))
    assert finding.evidence["hessian_top_pde"] == 5e5
    assert finding.remedy == ("train.quasi_newton=ssbroyden2", "train.lbfgs_steps=500")


@pytest.mark.parametrize("losses, summary", [
    ([10.0, 1.0, 0.1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6], ADAM_ONLY),   # fast: 3 decades
    ([1.0] * 4 + [0.999] * 4, ADAM_ONLY),                           # flat: stagnation's
    ([10.0, 2.0, 1.0, 0.5, 0.4, 0.3, 0.25, 0.2], {**ADAM_ONLY, "lbfgs_steps": 300}),
], ids=["fast", "flat", "has-a-second-phase"])
def test_fast_flat_or_second_order_runs_are_not_ill_conditioned(losses, summary):
    assert ill_conditioning(_adam_record(losses), summary, TH) == []


def test_a_second_order_remedy_is_one_the_run_can_take():
    assert second_order_phase({"parameters": 20000, "adam_steps": 4000}) == (
        "train.quasi_newton=lbfgs", "train.lbfgs_steps=2000")  # H of 3 GiB does not fit
    assert second_order_phase({"parameters": 1000, "adam_steps": 100, "lbfgs_steps": 50}) == (
        "train.quasi_newton=ssbroyden2",)  # a phase exists: only its method


def test_history_findings_get_a_runnable_second_order_phase(tmp_path):
    # The stalled example, short and Adam-only: any finding prescribing a second-order
    # phase also gets the iterations the run lacked.
    config = pinnsketch.load_config(ROOT / "problems" / "burgers_stalled.yaml", [
        "train.adam_steps=600", "train.eval_every=200", "monitor.every=5",
        "output.progress=false", "output.plots=false"])
    run = pinnsketch.train(config, out=tmp_path / "run")
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    history = pinnsketch.monitor.SketchMonitor.from_state_dict(
        state["trainer"]["monitor"]).history_view()
    findings = diagnose(history, dict(config.train.weights), metrics=run.metrics,
                        summary=run.summary)
    second = [f for f in findings if any("quasi_newton" in o for o in f.remedy)]
    assert second, [f.kind for f in findings]
    for finding in second:
        assert "train.lbfgs_steps=500" in finding.remedy, finding.remedy


def _spectra(pde_losses, residual, features, grid=(64, 64)):
    return [{"step": 100 * i, "loss": {"pde": v}, "residual_bands": residual,
             "feature_bands": features, "spectrum_grid": list(grid)}
            for i, v in enumerate(pde_losses)]


def test_a_residual_in_a_band_the_features_miss_is_spectral_bias():
    record = _spectra([1.0, 0.5, 0.3, 0.29, 0.28, 0.28, 0.27, 0.27],
                      residual=[0.01, 0.04, 0.9, 0.04, 0.01],
                      features=[0.95, 0.045, 0.004, 0.001, 0.0])
    (finding,) = spectral_bias(record, TH)
    assert finding.kind == "spectral_bias" and finding.evidence["band"] == 3
    # Band 3 of 5: ρ in [1/8, 1/4), centre 2^{-2.5}; 64 points per axis in 2-D:
    # ω = π/2 · 2^{-2.5} · 64/√2, σ = ω/π.
    sigma = 2 ** -2.5 * 64 / math.sqrt(2) / 2
    assert finding.remedy == ("model.fourier.features=32", f"model.fourier.scale={sigma:.3g}")


@pytest.mark.parametrize("losses, residual, features", [
    ([1.0, 0.5, 0.3, 0.29, 0.28, 0.28, 0.27, 0.27], [0.01, 0.04, 0.9, 0.04, 0.01],
     [0.5, 0.2, 0.2, 0.05, 0.05]),                                  # features span the band
    ([1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01], [0.01, 0.04, 0.9, 0.04, 0.01],
     [0.95, 0.045, 0.004, 0.001, 0.0]),                             # still falling fast
    ([1.0, 0.5, 0.3, 0.29, 0.28, 0.28, 0.27, 0.27], [0.9, 0.04, 0.04, 0.01, 0.01],
     [0.95, 0.045, 0.004, 0.001, 0.0]),                             # the lowest band
], ids=["features-span-it", "falling", "lowest-band"])
def test_other_spectra_are_not_spectral_bias(losses, residual, features):
    assert spectral_bias(_spectra(losses, residual, features), TH) == []
