"""Dynamical low-rank layers (abc-PSI): factorised forward, the two phases, truncation,
rank adaptation, and the layers inside a PINN run."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import pinnsketch
from pinnsketch import ConfigError
from pinnsketch.config import config_from_dict
from pinnsketch.low_rank import (LowRankLinear, low_rank_layers, replace_square_linears,
                                 truncation_rank)
from pinnsketch.training.low_rank import LowRankSchedule



@pytest.fixture(autouse=True)
def _float64():
    """These tests build their tensors in float64; other modules keep torch's default."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _dense(out_dim: int, in_dim: int, rank: int, seed: int = 0) -> nn.Linear:
    """A Linear layer whose weight has exactly ``rank`` (float64)."""
    g = torch.Generator().manual_seed(seed)
    layer = nn.Linear(in_dim, out_dim)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(out_dim, rank, generator=g)
                           @ torch.randn(rank, in_dim, generator=g) / in_dim)
        layer.bias.copy_(torch.randn(out_dim, generator=g))
    return layer


def test_at_the_weights_rank_the_layer_is_the_dense_layer_forward_and_gradient():
    dense = _dense(12, 10, 3)
    low = LowRankLinear(dense, rank=3, max_rank=5, tolerance=0.0)
    x = torch.randn(7, 10, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(low(x), dense(x), rtol=0, atol=1e-13)
    torch.testing.assert_close(low.weight(), dense.weight, rtol=0, atol=1e-13)
    # K phase: ∇_K = ∇_W V (W = K Vᵀ); the bias gradient is the dense one.
    dense(x).square().sum().backward()
    low(x).square().sum().backward()
    torch.testing.assert_close(low.K.grad[:, :3], dense.weight.grad @ low.V[:, :3],
                               rtol=1e-12, atol=1e-13)
    assert torch.all(low.K.grad[:, 3:] == 0)
    torch.testing.assert_close(low.bias.grad, dense.bias.grad, rtol=1e-12, atol=0)
    # L phase: W unchanged by an augmentation after no K step, and ∇_L = ∇_Wᵀ Û.
    low.augment()
    torch.testing.assert_close(low.weight(), dense.weight, rtol=0, atol=1e-13)
    basis = low.U[:, :6]
    torch.testing.assert_close(basis.T @ basis, torch.eye(6), rtol=0, atol=1e-13)
    low.K.grad = None
    low(x).square().sum().backward()
    torch.testing.assert_close(low.L.grad[:, :6], dense.weight.grad.T @ basis,
                               rtol=1e-12, atol=1e-13)
    assert low.K.grad is None  # the inactive factor takes no gradient


def test_higher_derivatives_through_the_layer_equal_the_dense_networks():
    dense = _dense(8, 8, 2, seed=3)
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), dense, nn.Tanh(), nn.Linear(8, 1))
    low = nn.Sequential(net[0], nn.Tanh(), LowRankLinear(dense, 2, 4, 0.0), nn.Tanh(), net[4])
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(4), requires_grad=True)

    def uxx(model):
        u = model(z).sum()
        (du,) = torch.autograd.grad(u, z, create_graph=True)
        (d2u,) = torch.autograd.grad(du[:, 0].sum(), z, create_graph=True)
        return d2u[:, 0]
    torch.testing.assert_close(uxx(low), uxx(net), rtol=1e-12, atol=1e-13)


def test_truncation_rank_is_the_smallest_rank_within_the_tolerance():
    g = torch.Generator().manual_seed(5)
    for _ in range(50):
        sigma = torch.sort(torch.rand(9, generator=g) ** 3, descending=True).values
        tau = float(torch.rand(1, generator=g)) * 0.5
        total = float(torch.linalg.vector_norm(sigma))
        brute = min(r for r in range(10)
                    if float(torch.linalg.vector_norm(sigma[r:])) <= tau * total)
        assert truncation_rank(sigma, tau, 1, 9) == max(1, brute)
    assert truncation_rank(torch.tensor([3.0, 2.0, 1.0]), 0.0, 1, 2) == 2  # clipped to max


def test_truncation_keeps_the_stated_tolerance_and_no_more_than_needed():
    layer = LowRankLinear(_dense(16, 14, 6, seed=6), rank=6, max_rank=7, tolerance=0.2)
    with torch.no_grad():
        layer.K[:, :6] += 0.05 * torch.randn(16, 6, generator=torch.Generator().manual_seed(7))
    layer.augment()
    before = layer.weight().detach().clone()
    layer.truncate()
    after = layer.weight().detach()
    error = float(torch.linalg.matrix_norm(before - after) / torch.linalg.matrix_norm(before))
    assert error <= 0.2
    r = int(layer.rank)
    sigma = torch.linalg.svdvals(before)
    # One rank fewer would break the tolerance (the core's σ are W's σ: orthonormal bases).
    assert float(torch.linalg.vector_norm(sigma[r - 1:]) / torch.linalg.vector_norm(sigma)) > 0.2
    torch.testing.assert_close(layer.U[:, :r].T @ layer.U[:, :r], torch.eye(r), rtol=0, atol=1e-12)
    torch.testing.assert_close(layer.V[:, :r].T @ layer.V[:, :r], torch.eye(r), rtol=0, atol=1e-12)


def _fit(target_rank: int, start_rank: int, steps: int, lr: float, tolerance: float = 0.02):
    """Least squares ‖X Wᵀ − Y‖² / N for a target weight of ``target_rank`` (σ 4 … 1.5),
    trained by SGD through the K/L phases; returns the losses and the rank trajectory."""
    g = torch.Generator().manual_seed(8)
    u, _ = torch.linalg.qr(torch.randn(20, target_rank, generator=g))
    v, _ = torch.linalg.qr(torch.randn(20, target_rank, generator=g))
    target = u @ torch.diag(torch.linspace(4.0, 1.5, target_rank)) @ v.T
    x = torch.randn(400, 20, generator=g)
    y = x @ target.T
    start = nn.Linear(20, 20)
    with torch.no_grad():
        start.weight.copy_(0.1 * torch.randn(20, 20, generator=g))
        start.bias.zero_()
    layer = LowRankLinear(start, rank=start_rank, max_rank=10, tolerance=tolerance)
    optimizer = torch.optim.SGD([layer.K, layer.L, layer.bias], lr=lr)
    schedule = LowRankSchedule([layer], substeps=5)
    losses, ranks = [], []
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        loss = (layer(x) - y).square().sum(dim=1).mean()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        schedule.after_step(step, optimizer)
        ranks.append(int(layer.rank))
    return losses, ranks


def test_the_rank_grows_to_the_targets_rank_and_shrinks_to_it():
    _, up = _fit(target_rank=6, start_rank=2, steps=600, lr=0.05)
    assert up[0] == 2 and up[-1] == 6
    losses, down = _fit(target_rank=3, start_rank=9, steps=600, lr=0.05)
    assert down[0] == 9 and down[-1] == 3
    assert losses[-1] < 1e-6 * losses[0]


def test_small_steps_descend_the_loss_from_cycle_to_cycle():
    """The loss at the start of each K-L cycle (after a truncation) decreases; within a
    cycle it restarts at the augmentation, where the backward correction puts W back to the
    start of the K phase (W = U₀ S₀ V₀ᵀ), and then descends again in the L phase."""
    losses, _ = _fit(target_rank=4, start_rank=4, steps=100, lr=0.01, tolerance=0.0)
    cycle_starts = losses[0::10]  # substeps 5: K steps 1-5, L steps 6-10, truncate
    assert all(b < a for a, b in zip(cycle_starts, cycle_starts[1:]))
    for start in range(0, 100, 10):
        k_phase, l_phase = losses[start:start + 5], losses[start + 5:start + 10]
        assert all(b < a for a, b in zip(k_phase, k_phase[1:]))
        assert all(b < a for a, b in zip(l_phase, l_phase[1:]))
        assert l_phase[0] > k_phase[-1]  # the restart from W₀ (the bias keeps its steps)


def test_the_backward_correction_returns_w_to_the_start_of_the_k_phase():
    layer = LowRankLinear(_dense(12, 12, 4, seed=9), rank=3, max_rank=6, tolerance=0.0)
    start = layer.weight().detach().clone()
    with torch.no_grad():
        layer.K[:, :3] += torch.randn(12, 3, generator=torch.Generator().manual_seed(10))
    moved = layer.weight().detach().clone()
    layer.augment()
    torch.testing.assert_close(layer.weight(), start, rtol=0, atol=1e-13)
    # ... while the augmented basis spans the K phase's columns.
    basis = layer.U[:, :6]
    torch.testing.assert_close(basis @ (basis.T @ moved), moved, rtol=0, atol=1e-12)


def test_parameters_and_memory_are_counted():
    layer = LowRankLinear(_dense(30, 24, 5), rank=5, max_rank=8, tolerance=0.1)
    assert layer.parameter_count() == 5 * (30 + 24) + 25 + 30
    allocated = sum(t.numel() for t in [*layer.parameters(), *layer.buffers()] if t.dim() == 2)
    assert allocated == 30 * 8 + 24 * 16 + 30 * 16 + 24 * 16 + 16 * 16  # K, L, U, V, S
    net = replace_square_linears(nn.Sequential(nn.Linear(2, 30), nn.Tanh(), nn.Linear(30, 30),
                                               nn.Tanh(), nn.Linear(30, 1)),
                                 30, rank=3, max_rank=8, min_rank=1, tolerance=0.1)
    assert [type(m).__name__ for m in net] == ["Linear", "Tanh", "LowRankLinear", "Tanh", "Linear"]


def _tree(**low_rank) -> dict:
    return {"problem": {"type": "burgers"},
            "model": {"width": 16, "depth": 3, "hard_constraints": True,
                      "low_rank": {"rank": 3, "tolerance": 0.05, "substeps": 5, **low_rank}},
            "sampling": {"interior": 128},
            "train": {"adam_steps": 40, "lbfgs_steps": 0, "eval_every": 10,
                      "checkpoint_every": 10, "dtype": "float64", "lr": 3e-3},
            "output": {"progress": False, "plots": False}}


def test_a_low_rank_pinn_records_its_ranks_and_resumes_bit_for_bit(tmp_path):
    full = pinnsketch.train(config_from_dict(_tree()), out=tmp_path / "full")
    records = [json.loads(line)
               for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert all(len(r["low_rank"]) == 2 for r in records)  # two hidden 16 × 16 layers
    assert records[1]["low_rank_phase"] == "K"  # step 10: two switches
    short = _tree()
    short["train"]["adam_steps"] = 27  # inside an L phase (switch at 25), off the cadence
    pinnsketch.train(config_from_dict(short), out=tmp_path / "part")
    resumed = pinnsketch.train(config_from_dict(_tree()), resume=tmp_path / "part")
    assert resumed.summary["rel_l2"] == full.summary["rel_l2"]
    for a, b in zip(low_rank_layers(resumed.model), low_rank_layers(full.model)):
        assert torch.equal(a.U, b.U) and torch.equal(a.K, b.K) and int(a.rank) == int(b.rank)


@pytest.mark.parametrize("change,fragment", [
    ({"model": {"type": "modified_mlp"}}, "model.type mlp"),
    ({"low_rank": {"max_rank": 9}}, "<= model.width // 2 (8)"),
    ({"low_rank": {"rank": 6, "max_rank": 5}}, "rank (6) <= max_rank (5)"),
    ({"train": {"lbfgs_steps": 5}}, "train.lbfgs_steps is 5"),
    ({"train": {"first_order": "sketchy"}}, "train.first_order is 'sketchy'"),
    ({"monitor": {"enabled": True}}, "the monitor is on"),
])
def test_low_rank_config_errors_name_the_reason(tmp_path, change, fragment):
    tree = _tree(**change.get("low_rank", {}))
    tree["model"].update(change.get("model", {}))
    tree["train"].update(change.get("train", {}))
    tree.update({k: v for k, v in change.items() if k == "monitor"})
    with pytest.raises(ConfigError, match="model.low_rank.rank") as info:
        pinnsketch.train(config_from_dict(tree), out=tmp_path / "never")
    assert fragment in str(info.value)
    assert not (tmp_path / "never").exists()
