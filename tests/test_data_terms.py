"""Observation data, the data term and Burgers parameter identification."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.errors import ConfigError
from pinnsketch.problems import Burgers, BurgersIdentification, Heat1D, make_observations

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("noise", [0.0, 0.05], ids=["clean", "noisy"])
def test_observations_sample_the_reference_with_stated_noise(noise):
    problem = Heat1D()
    rows = make_observations(problem, 4000, noise, torch.Generator().manual_seed(0))
    points, values = rows[:, :-1].numpy(), rows[:, -1].numpy()
    exact = problem.reference(points)
    deviation = values - exact
    if noise == 0:
        assert np.abs(deviation).max() == 0
    else:
        # Sample std of 4000 Gaussian draws is within ~3% of the true one (2.3 sigma ≈ 5%).
        assert deviation.std() == pytest.approx(noise * exact.std(), rel=0.05)


def test_identification_residual_with_true_coefficients_is_the_burgers_residual():
    forward, inverse = Burgers(), BurgersIdentification()
    with torch.no_grad():
        inverse.lambda1.fill_(1.0)
        inverse.log_lambda2.fill_(math.log(forward.options.nu))
    g = torch.Generator().manual_seed(0)
    z = forward.domain.interior(torch.rand(300, 2, generator=g, dtype=torch.float64)).requires_grad_(True)
    model = lambda p: torch.tanh(3 * p[:, 0] - p[:, 1]) * torch.cos(p[:, 1])
    torch.testing.assert_close(inverse.pde_residual(model, z), forward.pde_residual(model, z),
                               rtol=0, atol=1e-14)


def test_data_term_residual_is_model_minus_observation():
    problem = Heat1D()
    rows = torch.tensor([[0.25, 0.5, 2.0], [0.75, 0.1, -1.0]], dtype=torch.float64)
    model = lambda p: p.sum(dim=1)
    residual = problem.residuals(model, {"data": rows})["data"]
    torch.testing.assert_close(residual, torch.tensor([0.75 - 2.0, 0.85 + 1.0], dtype=torch.float64))


def test_identification_learns_coefficients_and_checkpoints_them(tmp_path):
    """A short run (4×20 network, 500 clean observations, 300 Adam + 1500 L-BFGS steps)
    drives λ₁ from 0 to the true 1 within 5% and λ₂ to the true ν = 0.01/π within 50%."""
    config = pinnsketch.load_config(ROOT / "problems" / "burgers_identification.yaml", [
        "train.adam_steps=300", "train.lbfgs_steps=1500", "train.eval_every=300",
        "sampling.interior=500", "model.width=20", "model.depth=4",
        "problem.observations.count=500", "output.progress=false", "output.plots=false"])
    run = pinnsketch.train(config, out=tmp_path / "id")
    summary, first = run.summary, run.metrics[0]
    assert (first["lambda1"], first["lambda2"]) == (0.0, pytest.approx(math.exp(-6.0)))
    assert summary["lambda1_error"] == pytest.approx(abs(summary["lambda1"] - 1.0))
    assert summary["lambda1_error"] < 0.05 * first["lambda1_error"]  # from 1.0
    assert summary["lambda2"] > 0 and summary["lambda2_error"] < 0.5
    loaded = pinnsketch.load_run(tmp_path / "id")
    assert loaded.problem.metrics()["lambda1"] == summary["lambda1"]
    assert loaded.problem.metrics()["lambda2"] == summary["lambda2"]
    assert "lambda1" in run.metrics[-1]


@pytest.mark.parametrize("bad", ["0.0", "-0.01"])
def test_identification_needs_a_positive_lambda2_start(bad):
    with pytest.raises(ConfigError, match=rf"problem.lambda2_init: got {bad}, must be > 0"):
        pinnsketch.check_config(pinnsketch.load_config(
            ROOT / "problems" / "burgers_identification.yaml", [f"problem.lambda2_init={bad}"]))


def test_identification_without_data_is_a_config_error(tmp_path):
    config = pinnsketch.load_config(ROOT / "problems" / "burgers_identification.yaml",
                                    ["problem.observations.count=0"])
    with pytest.raises(ConfigError, match="problem.observations.count"):
        pinnsketch.train(config, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_only_the_data_term_can_be_sketched(tmp_path):
    config = pinnsketch.load_config(ROOT / "problems" / "heat_data.yaml",
                                    ["terms={pde: {gradient: sketched}}"])
    with pytest.raises(ConfigError, match="terms.pde.gradient"):
        pinnsketch.train(config, out=tmp_path / "never")


def test_compare_modes_parse_and_reject_unknown_names():
    from pinnsketch.compare import parse_modes

    assert parse_modes("exact,sketched", "2,8") == [("exact", None), ("sketched", 2), ("sketched", 8)]
    assert parse_modes("sketched-ema", None) == [("sketched-ema", None)]
    with pytest.raises(ConfigError, match="allowed: exact, sketched"):
        parse_modes("exact,sketchy", None)
    with pytest.raises(ConfigError, match="--ranks"):
        parse_modes("sketched", "two")


def test_compare_runs_modes_side_by_side_and_measures_saved_memory(tmp_path):
    from pinnsketch.compare import compare, parse_modes

    config = pinnsketch.load_config(
        ROOT / "problems" / "burgers_identification.yaml",
        tiny_overrides(10, 0) + ["model.width=32", "problem.observations.count=400",
                                 "output.plots=false"])
    rows = compare(config, parse_modes("exact,sketched", "2"), tmp_path)
    assert [r["mode"] for r in rows] == ["exact", "sketched-r2"]
    for name in ("comparison.png", "comparison.md", "comparison.json"):
        assert (tmp_path / name).is_file()
    # Same seed, same points: the first evaluation (step 10) differs only through the data
    # gradients, and the sketched graph keeps rank-2 factors instead of 400×32 activations.
    assert rows[1]["saved_bytes"] < 0.6 * rows[0]["saved_bytes"]
    assert rows[0]["metrics"][1]["step"] == rows[1]["metrics"][1]["step"] == 10
    assert rows[0]["lbfgs_stop"] == "" and rows[0]["steps"] == 10

    # Two modes at once, one process each: the same runs (round-off apart where the worker's
    # thread count differs from this process's).
    parallel = compare(config, parse_modes("exact,sketched", "2"), tmp_path / "parallel", jobs=2)
    assert [r["mode"] for r in parallel] == ["exact", "sketched-r2"]
    for one, other in zip(rows, parallel):
        assert one["saved_bytes"] == other["saved_bytes"]
        for key in ("rel_l2", "data_loss", "pde_loss", "lambda1", "lambda2"):
            assert other[key] == pytest.approx(one[key], rel=1e-8), (one["mode"], key)
    with pytest.raises(ConfigError, match="--jobs: got 0"):
        compare(config, parse_modes("exact", None), tmp_path / "never", jobs=0)
    # The ema sketches live between steps; exact and batch keep nothing.
    assert rows[0]["state_bytes"] == rows[1]["state_bytes"] == 0


def test_ema_state_is_counted_and_does_not_depend_on_the_data_values(tmp_path):
    from pinnsketch.compare import data_term_memory

    overrides = tiny_overrides() + ["model.width=32", "problem.observations.count=400",
                                    "terms.data.gradient=sketched", "terms.data.rank=2"]
    path = ROOT / "problems" / "burgers_identification.yaml"
    batch = data_term_memory(pinnsketch.load_config(path, overrides + ["terms.data.variant=batch"]))
    ema = data_term_memory(pinnsketch.load_config(path, overrides + ["terms.data.variant=ema"]))
    noisy = data_term_memory(pinnsketch.load_config(
        path, overrides + ["terms.data.variant=ema", "problem.observations.noise=0.05"]))
    assert batch[1] == 0
    assert ema[0] == batch[0]  # the same rank-2 factors in the graph
    # The ema sketches hold at least k = 2r + 1 = 5 rows of each sketched layer's 400 × 32
    # input (float64), and nothing that depends on the values.
    assert ema[1] >= 8 * 5 * (400 + 32)
    assert noisy == ema


def _adaptive(tmp_path, name, tolerance, rank, steps=20, extra=()):
    config = pinnsketch.load_config(ROOT / "problems" / "heat_data.yaml", [
        *tiny_overrides(steps, 0, eval_every=5), "model.width=16", "model.depth=3",
        "problem.observations.count=64", "terms.data.gradient=sketched",
        f"terms.data.rank={rank}", f"terms.data.rank_tolerance={tolerance}",
        "terms.data.max_rank=6", "terms.data.rank_patience=1", "output.plots=false", *extra])
    run = pinnsketch.train(config, out=tmp_path / name)
    return run, [json.loads(line) for line in
                 (tmp_path / name / "metrics.jsonl").read_text().splitlines()]


def test_adaptive_sketched_rank_follows_its_tolerance_and_logs_its_decisions(tmp_path, caplog):
    caplog.set_level("INFO", logger="pinnsketch.sketch.sketched_grad")
    _, tight = _adaptive(tmp_path, "tight", 1e-12, rank=2)  # every error is above: raise
    assert tight[-1]["data_rank"] == 6  # from 2 up to max_rank, at the first forward
    assert tight[-1]["data_rank_changes"] >= 1 and tight[-1]["data_rank_error"] > 1e-12
    assert "rank 2 -> 6 after 1 forwards" in caplog.text
    _, loose = _adaptive(tmp_path, "loose", 10.0, rank=5)  # every error is well below: lower
    assert loose[-1]["data_rank"] == 1  # the smallest rank within √(1/4)·10 (errors ≤ 1)
    fixed_run, fixed = _adaptive(tmp_path, "fixed", 0.0, rank=3)
    assert {m["data_rank"] for m in fixed} == {3} and "data_rank_error" not in fixed[-1]


def test_adaptive_sketched_rank_resumes_bit_for_bit(tmp_path):
    full, _ = _adaptive(tmp_path, "full", 1e-12, rank=2, steps=20)
    _adaptive(tmp_path, "part", 1e-12, rank=2, steps=7)
    config = pinnsketch.load_config(tmp_path / "full" / "config.yaml")
    resumed = pinnsketch.train(config, resume=tmp_path / "part")
    assert resumed.summary["rel_l2"] == full.summary["rel_l2"]
