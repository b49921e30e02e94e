"""The diagnosis suite's procedure: the threshold choice, the confusion counts, and
re-diagnosing a finished run under other thresholds."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.cli import main as cli_main
from pinnsketch.diagnosis import Thresholds
from pinnsketch.errors import ConfigError
from pinnsketch.runner.diagnosis import read_thresholds, run_findings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import diagnosis_suite as suite  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_choice_is_the_middle_of_the_best_values_without_false_positives():
    grid = [10, 8, 6, 4, 2, 1]  # least to most sensitive
    found = {"s1": [False, False, True, True, True, True],
             "s2": [False, False, False, True, True, True],
             "h1": [False, False, False, False, True, True]}  # a healthy run fires at ≤ 2
    value, hits = suite.choose(found, ["s1", "s2"], ["h1"], grid)
    assert (value, hits) == (4, 2)  # 2 fires on h1; 4 is the only value catching both
    found["s2"] = [False] * 6
    value, hits = suite.choose(found, ["s1", "s2"], ["h1"], grid)
    assert (value, hits) == (4, 1)  # 6 and 4 catch s1 alike: the middle of the two (index 3)
    found["h1"] = [True] * 6
    assert suite.choose(found, ["s1", "s2"], ["h1"], grid) == (None, 0)


def test_no_scenario_carries_the_remedy_its_shipped_config_has():
    # wave.yaml ships NTK weights and allen_cahn.yaml causal training with embeddings: the
    # conflict and causality scenarios must still train without them.
    def scenario(name):
        case = suite.SCENARIOS[name]
        return pinnsketch.load_config(ROOT / "problems" / f"{case.config}.yaml",
                                      suite.case_overrides(case, ""))

    assert pinnsketch.load_config(ROOT / "problems" / "wave.yaml").train.balancing.scheme == "ntk"
    assert scenario("wave_soft").train.balancing.scheme == "none"
    shipped = pinnsketch.load_config(ROOT / "problems" / "allen_cahn.yaml")
    assert shipped.train.causal.chunks > 0 and shipped.model.periodic
    plain = scenario("allen_cahn_adam")
    assert (plain.train.causal.chunks, dict(plain.model.periodic),
            plain.model.fourier.features) == (0, {}, 0)


def test_confusion_counts():
    labels = {"a-s2": "imbalance", "b-s2": "imbalance", "c-s2": "causality", "h-s2": None}
    found = {"a-s2": {"imbalance"}, "b-s2": set(), "c-s2": {"imbalance", "causality"},
             "h-s2": {"causality"}}
    table = suite.confusion(found, labels)
    assert table["imbalance"] == {"detected": 1, "missed": 1, "false_positives": 0,
                                  "in_other_scenarios": 1}
    assert table["causality"] == {"detected": 1, "missed": 0, "false_positives": 1,
                                  "in_other_scenarios": 0}


def test_the_ablation_splits_a_remedy_into_its_quasi_newton_phase_and_the_rest():
    remedy = ["train.weights.bc=22.6", "train.balancing.scheme=grad_norm",
              "train.quasi_newton=ssbroyden2", "train.lbfgs_steps=1500"]
    assert suite.split_remedy(remedy) == {
        "second_order": ["train.quasi_newton=ssbroyden2", "train.lbfgs_steps=1500"],
        "rest": ["train.weights.bc=22.6", "train.balancing.scheme=grad_norm"]}
    # A key that merely starts like a second-order one is not one.
    assert suite.split_remedy(["train.quasi_newton_every=5"])["rest"] == [
        "train.quasi_newton_every=5"]
    assert suite.split_remedy(["train.quasi_newton=ssbroyden2"])["rest"] == []


def test_the_depth_variant_adds_a_layer_to_each_case_deep_tanh_included():
    deep = suite.case_overrides(suite.SCENARIOS["deep_tanh"], "deeper")
    assert deep[-1] == "model.depth=25" and "model.depth=24" in deep  # the later one wins
    assert pinnsketch.load_config(ROOT / "problems" / "burgers_healthy.yaml", deep).model.depth == 25
    assert suite.case_overrides(suite.HEALTHY["poisson"], "deeper")[-1] == "model.depth=4"
    assert suite.case_overrides(suite.HEALTHY["poisson"], "") == list(suite.QUARTER)


def test_every_scenario_names_a_calibrated_mechanism_and_a_shipped_config():
    for name, case in {**suite.SCENARIOS, **suite.HEALTHY}.items():
        assert (ROOT / "problems" / f"{case.config}.yaml").is_file(), name
        assert case.mechanism is None or case.mechanism in suite.PARAMETERS, name
    for mechanism, (fields, grid) in suite.PARAMETERS.items():
        assert all(hasattr(Thresholds(), f) for f in fields) and len(grid) >= 10, mechanism
        assert all(len(values) == len(fields) for values in grid), mechanism
    assert len({c.mechanism for c in suite.SCENARIOS.values()}) >= 8  # distinct mechanisms


def test_run_findings_rediagnoses_under_other_thresholds(tmp_path):
    # The shipped stalled set-up, short: found as a trivial-solution trap by default; with
    # its stuck threshold at −10 (a loss would have to grow 11-fold over a window to count
    # as stuck) nothing of that kind fires.
    config = pinnsketch.load_config(ROOT / "problems" / "burgers_stalled.yaml", [
        "train.adam_steps=600", "train.eval_every=200", "monitor.every=5",
        "output.progress=false", "output.plots=false"])
    pinnsketch.train(config, out=tmp_path / "run")
    written = (tmp_path / "run" / "diagnosis.json").read_text()
    default = run_findings(tmp_path / "run")
    assert {f.kind for f in default} and all(f.kind in written for f in default)
    strict = run_findings(tmp_path / "run", dataclasses.replace(Thresholds(), trivial_stuck=-10.0))
    assert "trivial_solution" not in {f.kind for f in strict}

    # The same through a calibration record and `pinnsketch diagnose --thresholds`.
    record = tmp_path / "thresholds.json"
    record.write_text(json.dumps({"commit": "x", "seeds": [0], "mechanisms": {
        "trivial_solution": {"fields": ["trivial_stuck"], "value": [-10.0]},
        "conflict": {"fields": ["conflict", "conflict_stall"], "value": None}}}))
    assert read_thresholds(record) == dataclasses.replace(Thresholds(), trivial_stuck=-10.0)
    assert cli_main(["diagnose", str(tmp_path / "run"), "--thresholds", str(record)]) == 0
    kinds = {f["mechanism"] for f in json.loads(
        (tmp_path / "run" / "diagnosis.json").read_text())["findings"]}
    assert kinds == {f.kind for f in strict}


def test_a_threshold_record_with_an_unknown_field_or_no_mechanisms_is_refused(tmp_path):
    record = tmp_path / "thresholds.json"
    record.write_text(json.dumps({"mechanisms": {"x": {"fields": ["stuk"], "value": [0.5]}}}))
    with pytest.raises(ConfigError, match="unknown threshold.*stuk.*allowed:.*stuck"):
        read_thresholds(record)
    record.write_text(json.dumps({"thresholds": {}}))
    with pytest.raises(ConfigError, match="not a calibration record"):
        read_thresholds(record)
    with pytest.raises(ConfigError, match="not a calibration record"):
        read_thresholds(tmp_path / "missing.json")
