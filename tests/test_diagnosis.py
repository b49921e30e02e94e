"""Stall diagnosis: each finding on a history built to show it (and only it), the shipped
healthy/stalled pair at small size, the report files and the ``diagnose`` command."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.training.build import build_model
from pinnsketch.cli import main as cli_main
from pinnsketch.diagnosis import TITLES, Thresholds, diagnose
from pinnsketch.runner.diagnosis import write_report
from pinnsketch.monitor import SketchMonitor
from pinnsketch.monitor.history import MonitorHistory, history_columns
from pinnsketch.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"layer0": (8, 2), "layer1": (8, 8), "layer2": (8, 8), "layer3": (1, 8)}
# The shipped pair at small size: 600 Adam steps of a 16-wide network on 256 + 32 + 32 points.
SMALL = ["train.adam_steps=600", "sampling.interior=256", "sampling.boundary=32",
         "sampling.initial=32", "model.width=16", "monitor.every=5", "output.progress=false",
         "output.plots=false", "train.eval_every=300", "train.checkpoint_every=600"]


# ------------------------------------------------------------------------------------------
# Synthetic histories: a healthy baseline with one planted pathology each
# ------------------------------------------------------------------------------------------
def _history(edit=None, n: int = 60, terms=("pde", "bc")) -> MonitorHistory:
    """A healthy history (losses fall 98%, balanced gradients, diverse spectra) with the
    columns in ``edit`` ({(stat, layer, term): values or callable(t) of t ∈ [0, 1]}) replaced."""
    columns = history_columns(list(LAYERS), terms, "pde")
    t = np.linspace(0.0, 1.0, n)
    base = {"loss": lambda key: (1.0 if key[2] == "pde" else 0.1) * np.exp(-4 * t),
            "norm": lambda key: 0.5 * np.exp(-t), "imbalance": lambda key: np.full(n, 5.0),
            "cosine": lambda key: np.full(n, 0.2), "alignment": lambda key: np.full(n, 0.2),
            "ema_norm": lambda key: 0.45 * np.exp(-t),
            "snr": lambda key: np.full(n, 0.9),
            "erank": lambda key: np.full(n, 1.0 if LAYERS.get(key[1], (2, 2))[0] == 1 else 1.8),
            "drift": lambda key: np.full(n, 5.0), "subspace_angle": lambda key: np.full(n, 40.0),
            "weight": lambda key: np.full(n, np.nan)}  # not recorded: the given weights hold
    values = np.stack([base[c[0]](c) for c in columns], axis=1)
    for key, new in (edit or {}).items():
        values[:, columns.index(key)] = new(t) if callable(new) else new
    return MonitorHistory(10 * np.arange(1, n + 1), values, columns, LAYERS, terms, "pde", 1)


def _each_layer(stat, term, value):
    return {(stat, ly, term): value for ly in LAYERS}


FLAT_LOSSES = {("loss", "", "pde"): lambda t: 0.5 * (1 - 0.005 * t),
               ("loss", "", "bc"): lambda t: 0.3 * (1 - 0.005 * t)}

CASES = {
    "healthy": ({}, {}, []),
    # bc weighted 1e-4 while its raw gradient is only 100× pde's (10× in layer2): its weighted
    # gradient is 100× below pde's (1000× in layer2); bc stuck.
    "weighted-out": ({("loss", "", "bc"): lambda t: 0.4 * (1 - 0.01 * t),
                      **_each_layer("norm", "bc", 50.0), ("norm", "layer2", "bc"): 5.0,
                      **_each_layer("norm", "pde", 0.5)},
                     {"bc": 1e-4}, [("imbalance", "bc", "layer2"),
                                    ("trivial_solution", "bc", "all")]),
    # Equal weights, but bc's gradient is 500× smaller than pde's (5000× in layer1; Wang's λ̂
    # 5000) and bc does not move.
    "drowned": ({("loss", "", "bc"): lambda t: 0.3 * (1 - 0.01 * t),
                 **_each_layer("imbalance", "bc", 2000.0), ("imbalance", "layer1", "bc"): 9000.0,
                 ("imbalance", "all", "bc"): 5000.0, **_each_layer("norm", "bc", 1e-3),
                 ("norm", "layer1", "bc"): 1e-4},
                {}, [("imbalance", "bc", "layer1"), ("trivial_solution", "bc", "all")]),
    # pde falls 99.8% while bc stays put, gradients balanced: the PDE alone is being solved.
    "trivial-solution": ({("loss", "", "pde"): lambda t: np.exp(-6 * t),
                          ("loss", "", "bc"): lambda t: 0.4 * (1 - 0.01 * t)},
                         {}, [("trivial_solution", "bc", "all")]),
    # The reverse of weighted-out: bc's weight is 1e-4 but its raw gradient 10⁷× pde's, so its
    # *weighted* gradient is 1000× pde's: pde is the outweighed term, not bc (both stuck).
    "outweighing-small-weight": ({**FLAT_LOSSES, **_each_layer("norm", "bc", 1e6),
                                  **_each_layer("norm", "pde", 0.1)},
                                 {"bc": 1e-4}, [("imbalance", "pde", "layer0")]),
    # Every layer's gradient at 1e-9 from the first step, losses flat: no layer stands out,
    # the whole network has vanished.
    "uniform-vanishing": ({**FLAT_LOSSES, **_each_layer("norm", "pde", 1e-9),
                           **_each_layer("norm", "bc", 1e-9)}, {}, [("vanishing", "pde", "all")]),
    "vanishing": ({("norm", "layer0", "pde"): lambda t: 1e-6 * np.exp(-t)}, {},
                  [("vanishing", "pde", "layer0")]),
    "exploding": ({("norm", "layer3", "bc"): 1e4}, {}, [("exploding", "bc", "layer3")]),
    # Losses stop falling after the first sixth; every gradient collapses 10⁵-fold (layer1 10⁶).
    "stagnation": ({("loss", "", "pde"): lambda t: 0.5 + 0.5 * np.exp(-40 * t),
                    ("loss", "", "bc"): lambda t: 0.3 + 0.3 * np.exp(-40 * t),
                    **{("norm", ly, term): (lambda t: np.exp(-12 * t)) for ly in LAYERS
                       for term in ("pde", "bc")},
                    ("norm", "layer1", "pde"): lambda t: np.exp(-14 * t),
                    ("norm", "layer1", "bc"): lambda t: np.exp(-14 * t)},
                   {}, [("stagnation", "pde", "layer1")]),
    # pde and bc oppose (cos −0.9 in layer2) while the total is flat and bc rises.
    "conflict": ({("loss", "", "pde"): lambda t: 0.5 * (1 - 0.05 * t),
                  ("loss", "", "bc"): lambda t: 0.1 * (1 + 0.5 * t),
                  **_each_layer("cosine", "pde|bc", -0.2), ("cosine", "layer2", "pde|bc"): -0.9},
                 {}, [("conflict", "pde|bc", "layer2")]),
    # The EMA gradients of pde fall from effective rank 2 to 1 in every layer while it is flat.
    "rank-collapse": ({**FLAT_LOSSES,
                       **{("erank", ly, "pde"): (lambda t: np.where(t < 0.3, 2.0, 1.01))
                          for ly in ("layer0", "layer1", "layer2")},
                       ("erank", "layer1", "pde"): lambda t: np.where(t < 0.3, 2.0, 1.002)},
                      {}, [("rank_collapse", "pde", "layer1")]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_finding_on_a_history_built_to_show_it(name):
    edit, weights, expected = CASES[name]
    findings = diagnose(_history(edit), weights)
    assert [(f.kind, f.term, f.layer) for f in findings] == expected
    for f in findings:
        assert f.steps[1] - f.steps[0] >= 150  # at least two windows of the 600 steps
        assert f.message and f.suggestion and all(np.isfinite(v) or np.isnan(v)
                                                  for v in f.evidence.values())


def test_too_short_a_history_gives_no_findings():
    assert diagnose(_history(CASES["vanishing"][0], n=7)) == []


# ------------------------------------------------------------------------------------------
# The shipped healthy / stalled pair, small size, against the full gradient history
# ------------------------------------------------------------------------------------------
class RecordingMonitor(SketchMonitor):
    """Keeps every per-term gradient: the independent reference for the finding's layer."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.record = []

    def observe(self, step, losses, grads, phase="adam", weights=None):
        self.record.append((step, {t: {k: float(g.norm()) for k, g in d.items()}
                                   for t, d in grads.items()}))
        super().observe(step, losses, grads, phase, weights)


def _small_run(name: str):
    config = pinnsketch.load_config(ROOT / "problems" / f"burgers_{name}.yaml", SMALL)
    problem = pinnsketch.load_problem(config)
    model = build_model(config, problem).double()
    terms = problem.physics_terms(False)
    monitor = RecordingMonitor.for_module(model, terms, rank=config.monitor.rank,
                                          beta=config.monitor.beta, every=config.monitor.every)
    trainer = Trainer(problem, model, train=config.train, sampling=config.sampling, terms=terms,
                      observations=None, device=torch.device("cpu"), dtype=torch.float64,
                      monitor=monitor)
    for _ in range(config.train.adam_steps):
        trainer.adam_step()
    return config, monitor


@pytest.mark.parametrize("name", ["healthy", "stalled"])
def test_shipped_pair_at_small_size(name):
    config, monitor = _small_run(name)
    findings = diagnose(monitor.history_view(), config.train.weights)
    if name == "healthy":
        assert findings == []
        return
    imbalance = [f for f in findings if f.kind == "imbalance" and f.term == "ic"]
    assert len(imbalance) == 1, findings
    (finding,) = imbalance
    assert {f.term for f in findings if f.kind == "imbalance"} <= {"ic", "bc"}
    # From the start, while pde's weighted gradient is ≥ 10× ic's (later pde is fitted, the
    # weighted gradients become comparable and ic stays trivial: not an imbalance any more).
    assert finding.steps[0] <= 100
    # Independent reference: per layer, the median over the finding's strongest window of
    # w_pde‖∇L_pde‖ / (w_ic‖∇L_ic‖) from the stored gradient norms; the finding names its
    # argmax, and its remedy raises ic's weight (never lowers it).
    assert "`ic` is outweighed by `pde`" in finding.message
    w = {t: config.train.weights.get(t, 1.0) for t in ("pde", "ic")}
    inside = [norms for step, norms in monitor.record
              if finding.window[0] <= step <= finding.window[1]]
    ratios = {ly: np.median([w["pde"] * n["pde"][ly] / (w["ic"] * n["ic"][ly]) for n in inside])
              for ly in monitor.layers}
    assert finding.layer == max(ratios, key=ratios.get)
    assert finding.evidence["layer_weighted_norm_ratio"] == pytest.approx(
        ratios[finding.layer], rel=1e-5)
    assert ratios[finding.layer] > 10 and finding.evidence["weight"] == 1e-4
    (remedy,) = finding.remedy
    key, value = remedy.split("=")
    assert key == "train.weights.ic" and float(value) > 1e-4
    # Once pde is fitted (by u ≈ 0), ic stays put for the rest of the run: the trap.
    (trap,) = [f for f in findings if f.kind == "trivial_solution" and f.term == "ic"]
    assert trap.steps[1] >= 590 and trap.remedy == ("train.weights.ic=1",)


# ------------------------------------------------------------------------------------------
# Reports, the command and the example
# ------------------------------------------------------------------------------------------
def test_write_report_and_diagnose_command(tmp_path, capsys):
    overrides = tiny_overrides(20, 10) + ["model.hard_constraints=false", "monitor.enabled=true",
                                          "monitor.every=2", "monitor.quasi_newton_every=3",
                                          "train.weights={ic: 1.0e-4}"]
    run_dir = tmp_path / "run"
    pinnsketch.train(pinnsketch.load_config(ROOT / "problems" / "burgers.yaml", overrides),
                     out=run_dir)
    written = (run_dir / "diagnosis.md").read_text()
    assert "ic=0.0001" in written  # the weights come from the run's config.yaml
    assert written.index("## Findings (") < written.index("## Monitor state")
    data = json.loads((run_dir / "diagnosis.json").read_text())
    monitor = data["monitor"]
    # Both phases observed: Adam every 2nd step of 20, SSBroyden2 every 3rd evaluation.
    assert monitor["checks"]["adam"] == 10 and monitor["checks"]["ssbroyden2"] >= 3
    assert monitor["cadence"] == {"adam": {"every_steps": 2},
                                  "after_adam": {"every_evaluations": 3}}
    # Width 8: every layer's exact EMA gradient is smaller than a sketch, so auto keeps it.
    assert {v["bank"] for v in monitor["layers"].values()} == {"exact"}
    assert monitor["memory_bytes"]["banks"] == monitor["memory_bytes"]["exact_state"]
    assert monitor["memory_bytes"]["tests"] == 0
    for finding in data["findings"]:
        assert finding["mechanism"] in TITLES and finding["source"]
        assert all("=" in r for r in finding["remedy"])
    for stat in ("norm", "ema_norm", "snr", "erank", "drift", "imbalance", "cosine",
                 "alignment", "subspace_angle", "losses"):
        assert (run_dir / "plots" / f"monitor_{stat}.png").is_file(), stat
    (run_dir / "diagnosis.md").unlink()
    assert cli_main(["diagnose", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    assert printed.strip() == (run_dir / "diagnosis.md").read_text().strip() == written.strip()


def test_diagnose_command_on_an_unmonitored_run(tmp_path, capsys):
    run_dir = tmp_path / "plain"
    pinnsketch.train(pinnsketch.load_config(ROOT / "problems" / "burgers.yaml",
                                            tiny_overrides(10, 0)), out=run_dir)
    assert cli_main(["diagnose", str(run_dir)]) == 2
    assert "not monitored" in capsys.readouterr().err


def test_report_of_a_standalone_monitor_has_no_config(tmp_path):
    monitor = SketchMonitor({"layer0": (3, 2)}, ("a",), history=8)
    for step in range(12):
        monitor.observe(step, {"a": 1.0}, {"a": {"layer0": torch.ones(3, 2)}})
    text = write_report(tmp_path / "alone", monitor, figures=False)
    assert "No findings" in text and "a=1" in text


def test_diagnose_stall_example(tmp_path):
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import diagnose_stall
    finally:
        sys.path.pop(0)
    results = diagnose_stall.main(steps=400, out=tmp_path, overrides=tuple(SMALL[1:]))
    assert results["healthy"]["findings"] == []
    assert "No findings" in results["healthy"]["report"]
    assert ("trivial_solution", "ic") in {(f.kind, f.term)
                                           for f in results["stalled"]["findings"]}
    assert results["stalled"]["rel_l2"] > 0.9 > results["healthy"]["rel_l2"]


def test_a_trap_under_equal_weights_gets_adaptive_weights_as_its_remedy():
    edit, weights, _ = CASES["trivial-solution"]
    (trap,) = [f for f in diagnose(_history(edit), weights) if f.kind == "trivial_solution"]
    assert trap.remedy == ("train.balancing.scheme=grad_norm",)
    # Under a smaller weight the remedy is that weight raised to pde's.
    (low,) = [f for f in diagnose(_history(edit), {"bc": 1e-3}) if f.kind == "trivial_solution"]
    assert low.remedy == ("train.weights.bc=1",)


def test_a_trap_the_run_gets_past_is_no_finding():
    # The trivial-solution case for the first 70% of the run; then (a second phase) bc
    # falls 1000-fold: a plateau passed through, not the run's stall.
    def bc(t):
        return np.where(t < 0.7, 0.4 * (1 - 0.01 * t), 0.4 * np.exp(-100 * (t - 0.7)))

    pde = CASES["trivial-solution"][0][("loss", "", "pde")]
    kept = diagnose(_history({("loss", "", "pde"): pde, ("loss", "", "bc"): lambda t: np.where(
        t < 0.7, 0.4 * (1 - 0.01 * t), 0.4 * (1 - 0.01 * t) * (1 - 0.5 * (t - 0.7)))}))
    assert [f.kind for f in kept] == ["trivial_solution"]  # halved after it: still stuck
    assert diagnose(_history({("loss", "", "pde"): pde, ("loss", "", "bc"): bc})) == []


def test_uneven_layers_on_a_term_being_fitted_are_no_finding():
    # The exploding case's layer3 ratio (2e4x the median layer), but bc 10x down within
    # the first window (the base history's bc takes 60% of the run for that).
    edit = CASES["exploding"][0]
    assert [f.kind for f in diagnose(_history(edit))] == ["exploding"]
    fitted = {**edit, ("loss", "", "bc"): lambda t: 0.1 * np.exp(-20 * t)}
    assert diagnose(_history(fitted)) == []


def test_opposed_terms_that_creep_are_a_conflict_only_below_the_conflict_stall():
    # The conflict case, but bc falls 3.3% per window (the weighted total 0.5%): under the
    # default (2%) bc is still moving; a conflict_stall of 5% counts that creep as stalled.
    edit = {**CASES["conflict"][0], ("loss", "", "pde"): lambda t: 0.5 * (1 - 0.002 * t),
            ("loss", "", "bc"): lambda t: 0.1 * np.exp(-0.25 * t)}
    assert diagnose(_history(edit)) == []
    creeping = dataclasses.replace(Thresholds(), conflict_stall=0.05)
    assert [(f.kind, f.term, f.layer) for f in diagnose(_history(edit), thresholds=creeping)] \
        == [("conflict", "pde|bc", "layer2")]
