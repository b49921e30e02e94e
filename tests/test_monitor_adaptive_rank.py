"""The monitor's adaptive sketch rank: the probes' error estimate against the exact error,
the rank following the EMA gradient's effective rank up and down, exact resume, and the
option from the config."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.errors import ConfigError
from pinnsketch.monitor import SketchMonitor
from pinnsketch.monitor.banks import ExactBank, ThreeSketchBank

ROOT = Path(__file__).resolve().parents[1]
M = N = 64


def _stream(rank: int, steps: int, seed: int, noise: float = 1e-4):
    """Gradients of a fixed rank-``rank`` subspace with fresh coefficients each step (σ_j
    decaying as 0.8^j) plus a little full-rank noise: Ḡ has that effective rank."""
    g = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(M, rank, generator=g, dtype=torch.float64)).Q
    v = torch.linalg.qr(torch.randn(N, rank, generator=g, dtype=torch.float64)).Q
    scale = 0.8 ** torch.arange(rank, dtype=torch.float64)
    for _ in range(steps):
        coefficients = scale * (1 + 0.3 * torch.randn(rank, generator=g, dtype=torch.float64))
        yield (u * coefficients) @ v.T + noise * torch.randn(M, N, generator=g,
                                                               dtype=torch.float64)


def _banks(rank: int, probes: int = 4, count: int = 6):
    g = torch.Generator().manual_seed(0)
    k_max, s_max = 2 * rank + 1, 4 * rank + 3
    tests = (torch.randn(k_max + s_max + probes, M, generator=g, dtype=torch.float64),
             torch.randn(k_max + s_max, N, generator=g, dtype=torch.float64))
    options = dict(beta=0.9, tests=tests, k_max=k_max, dtype=torch.float64,
                   device=torch.device("cpu"))
    return (ThreeSketchBank(count, M, N, rank, probes=probes, **options),
            ExactBank(count, M, N, rank, **options))


def test_scree_estimates_the_exact_truncation_error():
    sketch, exact = _banks(rank=4)
    streams = [_stream(6, 40, seed) for seed in range(6)]
    for matrices in zip(*streams):
        batch = torch.stack(matrices)
        sketch.update(batch)
        exact.update(batch)
    sigma, u, v = sketch.spectrum()
    scree = sketch.scree(sigma, u, v)                                   # (6, k)
    truth = exact.ema / exact.mass
    ratios = []
    for r in (1, 2, 4):
        estimate = (u[:, :, :r] * sigma[:, None, :r]) @ v[:, :, :r].mT
        error = torch.linalg.matrix_norm(truth - estimate) / torch.linalg.matrix_norm(truth)
        ratios += (scree[:, r - 1] / error).tolist()
    # An upper estimate (triangle inequality) of the true error, with the probes' spread
    # (relative standard deviation √(2/q) = 0.71 on the sketch's own error at q = 4).
    assert 0.7 <= np.median(ratios) <= 2.0, ratios
    assert min(ratios) > 0.3, ratios


def test_resize_down_keeps_the_sketch_and_up_restarts_it():
    sketch, _ = _banks(rank=8)
    sketch.resize(4)  # the 8-rank sizes allocate the test matrices (k_max)
    for g in _stream(3, 30, seed=1):
        sketch.update(g.expand(6, M, N))
    sigma_before = sketch.spectrum()[0][:, :3].clone()
    sketch.resize(2)
    assert (sketch.k, sketch.s) == (5, 11) and sketch.x.shape == (6, 5, N)
    # Truncation loses nothing the rank-2 sketch would have had: its leading values are
    # those of a rank-2 sketch of the same stream, close to the rank-4 sketch's.
    torch.testing.assert_close(sketch.spectrum()[0][:, :2], sigma_before[:, :2], rtol=0.05,
                               atol=0)
    sketch.resize(6)
    assert sketch.mass == 0.0 and float(sketch.x.abs().max()) == 0.0  # restarted
    with pytest.raises(ValueError, match="exceeds the test matrices"):
        sketch.resize(9)


def _monitor(**kwargs):
    return SketchMonitor({"layer0": (M, N)}, ("pde", "bc"), rank=2, beta=0.9,
                         backend="three_sketch", history=64, seed=3, dtype=torch.float64,
                         **kwargs)


def _feed(monitor, first_step, matrices):
    for step, g in enumerate(matrices, start=first_step):
        monitor.observe(step, {"pde": 1.0, "bc": 1.0},
                        {"pde": {"layer0": g}, "bc": {"layer0": 0.5 * g}})


def test_rank_rises_to_the_gradients_rank_and_falls_back(caplog):
    monitor = _monitor(rank_tolerance=0.1, max_rank=12, rank_patience=2)
    with caplog.at_level(logging.INFO, logger="pinnsketch.monitor.adaptive_rank"):
        _feed(monitor, 0, _stream(10, 150, seed=4))
        high = monitor.metrics()["monitor_rank"]["64x64"]
        error_high = monitor.metrics()["monitor_rank_error"]["64x64"]
        _feed(monitor, 150, _stream(1, 300, seed=5))
        low = monitor.metrics()["monitor_rank"]["64x64"]
    # Rank 10 with σ_j = 0.8^j: rank r leaves ‖tail‖/‖Ḡ‖ ≈ 0.8^r·…; ≤ 0.1 needs r ≥ 7.
    assert 7 <= high <= 12, high
    assert error_high <= 0.1 * 1.5
    assert low == 2  # back at the statistics rank once Ḡ is rank one
    moves = [r.getMessage() for r in caplog.records if "sketch rank" in r.getMessage()]
    assert moves and "→" in moves[0] and any("→ 2" in m for m in moves)


def test_sketch_reading_is_accurate_at_the_chosen_rank():
    adaptive = _monitor(rank_tolerance=0.05, max_rank=12, rank_patience=2)
    exact = SketchMonitor({"layer0": (M, N)}, ("pde", "bc"), rank=2, beta=0.9,
                          backend="exact", history=64, seed=3, dtype=torch.float64)
    matrices = list(_stream(8, 200, seed=6))
    _feed(adaptive, 0, matrices)
    _feed(exact, 0, matrices)
    rank = adaptive.metrics()["monitor_rank"]["64x64"]
    truth = exact.ema_gradient("layer0", "pde")
    reading = adaptive.ema_gradient("layer0", "pde")
    best = torch.linalg.svdvals(truth)
    optimum = float(best[rank:].square().sum().sqrt() / best.square().sum().sqrt())
    error = float(torch.linalg.matrix_norm(truth - reading) / torch.linalg.matrix_norm(truth))
    assert rank > 2 and error <= 0.05 * 1.5 and error >= optimum * 0.5, (rank, error, optimum)


def test_state_round_trip_after_resizes_continues_exactly():
    monitor = _monitor(rank_tolerance=0.1, max_rank=12, rank_patience=2)
    matrices = list(_stream(10, 120, seed=7)) + list(_stream(2, 120, seed=8))
    _feed(monitor, 0, matrices[:100])
    twin = SketchMonitor.from_state_dict(monitor.state_dict())
    assert twin.metrics() == monitor.metrics()
    _feed(monitor, 100, matrices[100:])
    _feed(twin, 100, matrices[100:])
    assert twin.metrics() == monitor.metrics()
    a, b = monitor.history_view(), twin.history_view()
    np.testing.assert_array_equal(a.values, b.values)


def test_memory_follows_the_rank():
    monitor = _monitor(rank_tolerance=0.1, max_rank=12, rank_patience=2)
    _feed(monitor, 0, _stream(10, 150, seed=4))
    rank = monitor.metrics()["monitor_rank"]["64x64"]
    held = monitor.memory()["layers"]["layer0"]["numbers_per_pair"]
    assert held == ThreeSketchBank.numbers(M, N, rank, 4)


def test_a_run_logs_its_monitor_ranks_and_resumes_exactly(tmp_path):
    overrides = tiny_overrides(adam=40, eval_every=10) + [
        "model.width=40", "model.depth=2", "monitor.enabled=true", "monitor.every=1",
        "monitor.backend=three_sketch", "monitor.rank=2", "monitor.rank_tolerance=0.02",
        "monitor.max_rank=6", "monitor.rank_patience=1"]
    path = ROOT / "problems" / "poisson.yaml"
    run = pinnsketch.train(pinnsketch.load_config(path, overrides), out=tmp_path / "whole")
    records = [json.loads(line) for line in
               (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    ranks = [r["monitor_rank"] for r in records if "monitor_rank" in r]
    # Only the 40×40 layer has room to move (the input and output layers' ranks are 2, 1).
    assert ranks and set(ranks[-1]) == {"40x40"} and ranks[-1]["40x40"] > 2
    short = [o.replace("train.adam_steps=40", "train.adam_steps=20") for o in overrides]
    pinnsketch.train(pinnsketch.load_config(path, short), out=tmp_path / "part")
    resumed = pinnsketch.train(pinnsketch.load_config(path, overrides), resume=tmp_path / "part")
    for a, b in zip(run.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    last = json.loads((tmp_path / "part" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["monitor_rank"] == records[-1]["monitor_rank"]


def test_an_adaptive_rank_without_a_sketched_layer_is_a_config_error(tmp_path):
    config = pinnsketch.load_config(ROOT / "problems" / "poisson.yaml", tiny_overrides() + [
        "monitor.enabled=true", "monitor.rank_tolerance=0.1"])
    with pytest.raises(ConfigError, match=r"monitor\.rank_tolerance: .* no monitored layer "
                                          r"is sketched"):
        pinnsketch.train(config, out=tmp_path / "run")
