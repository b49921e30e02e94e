"""Sketchy (Feinberg et al. 2023) against its definition: at ℓ = d the preconditioner is full
Shampoo's, computed here by eigendecomposition of the exact decayed factors; below that the
sketched factor keeps the Frequent-Directions bound; the step is the stated graft and
momentum; the statistics take ℓ(m + n) numbers; the state round-trips bit for bit."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

import pinnsketch
from conftest import tiny_overrides
from pinnsketch.optim.sketchy import Sketchy, _precondition_axis

BETA1, BETA2 = 0.9, 0.95


def _stream(steps: int, m: int, n: int, seed: int = 0, spread: float = 1.0) -> list[torch.Tensor]:
    """Gradients with a decaying spectrum (an ill-conditioned stream)."""
    generator = torch.Generator().manual_seed(seed)
    scales = torch.logspace(0, -spread, m, dtype=torch.float64)
    return [scales[:, None] * torch.randn(m, n, generator=generator, dtype=torch.float64)
            for _ in range(steps)]


def _feed(optimizer: Sketchy, param: torch.Tensor, grads: list[torch.Tensor]) -> None:
    for grad in grads:
        param.grad = grad.clone()
        optimizer.step()


def _factors(grads: list[torch.Tensor], beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """L = Σ β^{T−t}(1 − β) G Gᵀ and R = Σ β^{T−t}(1 − β) GᵀG, exactly."""
    T = len(grads)
    left = sum(beta ** (T - 1 - t) * (1 - beta) * g @ g.mT for t, g in enumerate(grads))
    right = sum(beta ** (T - 1 - t) * (1 - beta) * g.mT @ g for t, g in enumerate(grads))
    return left, right


def _inverse_root(matrix: torch.Tensor, floor: float = 1e-12) -> torch.Tensor:
    """matrix^{−1/4} on its range (eigenvalues above floor × the largest), 0 off it."""
    values, vectors = torch.linalg.eigh(matrix)
    keep = values > floor * values.max()
    return vectors[:, keep] @ torch.diag(values[keep] ** -0.25) @ vectors[:, keep].mT


def test_at_full_rank_the_preconditioner_is_shampoos():
    m, n = 7, 5
    grads = _stream(6, m, n)
    param = torch.zeros(m, n, dtype=torch.float64, requires_grad=True)
    optimizer = Sketchy([param], betas=(BETA1, BETA2), rank=max(m, n))
    _feed(optimizer, param, grads)
    left, right = _factors(grads, BETA2)
    probe = torch.randn(m, n, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    shampoo = _inverse_root(left) @ probe @ _inverse_root(right)
    torch.testing.assert_close(optimizer.precondition(param, probe), shampoo,
                               rtol=1e-9, atol=1e-12)
    sketches = optimizer._sketches_of(param)
    assert all(float(s.dropped_mass) == 0.0 for s in sketches)  # nothing escapes at ℓ = d


def test_below_full_rank_the_factor_keeps_the_frequent_directions_bound():
    m, n, ell = 24, 10, 6
    grads = _stream(12, m, n, spread=2.0)
    param = torch.zeros(m, n, dtype=torch.float64, requires_grad=True)
    optimizer = Sketchy([param], betas=(BETA1, BETA2), rank=ell)
    _feed(optimizer, param, grads)
    left_sketch = optimizer._sketches_of(param)[0]
    left, _ = _factors(grads, BETA2)
    rho = float(left_sketch.dropped_mass)
    error = torch.linalg.eigvalsh(left - left_sketch.covariance())
    assert rho > 0 and error.min() >= -1e-10 * rho and error.max() <= rho * (1 + 1e-9)
    # Δ ≤ ‖A − A_k‖²_F / (ℓ + 1 − k) with AᵀA = L (its eigenvalues are A's σ²).
    energy = torch.linalg.eigvalsh(left).flip(0).clamp_min(0)
    for k in range(ell):
        assert rho <= float(energy[k:].sum()) / (ell + 1 - k) * (1 + 1e-9)
    # Off the sketched subspace the preconditioner is ρ^{−1/4}: a direction orthogonal to
    # B's rows is scaled by exactly that on the left.
    basis = torch.linalg.svd(left_sketch.sketch, full_matrices=True)[2]
    outside = basis[-1]  # rows of B span at most ℓ < m directions
    ones = torch.ones(1, n, dtype=torch.float64)
    preconditioned = optimizer.precondition(param, outside[:, None] @ ones)
    torch.testing.assert_close(preconditioned, rho ** -0.25 * outside[:, None]
                               @ (ones @ _right_root(optimizer, param)), rtol=1e-9, atol=1e-12)


def _right_root(optimizer: Sketchy, param: torch.Tensor) -> torch.Tensor:
    """R̃^{−1/4} (n×n), the right sketch's root applied to the identity."""
    right = optimizer._sketches_of(param)[1]
    eye = torch.eye(param.shape[1], dtype=torch.float64)
    return _precondition_axis(eye, right, optimizer.param_groups[0]["floor"], 0.25)


def test_the_step_grafts_onto_rmsprop_and_takes_momentum():
    m, n = 4, 3
    grads = _stream(3, m, n, seed=3)
    weight = torch.zeros(m, n, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(m, dtype=torch.float64, requires_grad=True)
    optimizer = Sketchy([weight, bias], lr=0.1, betas=(BETA1, BETA2), eps=1e-8, rank=m)
    expect_w, expect_b = torch.zeros(m, n, dtype=torch.float64), torch.zeros(m, dtype=torch.float64)
    mw, vw, mb, vb = (torch.zeros_like(expect_w), torch.zeros_like(expect_w),
                      torch.zeros_like(expect_b), torch.zeros_like(expect_b))
    for t, g in enumerate(grads, start=1):
        gb = g[:, 0].clone()
        weight.grad, bias.grad = g.clone(), gb.clone()
        optimizer.step()
        left, right = _factors(grads[:t], BETA2)
        vw = BETA2 * vw + (1 - BETA2) * g ** 2
        graft = g / ((vw / (1 - BETA2 ** t)).sqrt() + 1e-8)
        shaped = _inverse_root(left) @ g @ _inverse_root(right)
        mw = BETA1 * mw + (1 - BETA1) * shaped * (graft.norm() / shaped.norm())
        expect_w = expect_w - 0.1 * mw / (1 - BETA1 ** t)
        vb = BETA2 * vb + (1 - BETA2) * gb ** 2
        mb = BETA1 * mb + (1 - BETA1) * gb / ((vb / (1 - BETA2 ** t)).sqrt() + 1e-8)
        expect_b = expect_b - 0.1 * mb / (1 - BETA1 ** t)
        torch.testing.assert_close(weight.detach(), expect_w, rtol=1e-10, atol=1e-13)
        torch.testing.assert_close(bias.detach(), expect_b, rtol=1e-12, atol=1e-15)


def test_statistics_take_rank_times_dimension_numbers():
    weight = torch.zeros(256, 128, dtype=torch.float64, requires_grad=True)
    optimizer = Sketchy([weight, torch.zeros(256, requires_grad=True)], rank=16)
    nbytes = optimizer.statistics_nbytes()
    assert nbytes["sketchy"] == ((16 * 256 + 1) + (16 * 128 + 1)) * 8
    assert nbytes["shampoo"] == (256 ** 2 + 128 ** 2) * 8


def test_state_round_trips_and_resume_is_bit_exact():
    m, n = 9, 6
    grads = _stream(8, m, n, seed=5)
    params = [torch.zeros(m, n, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    first = Sketchy([params[0]], betas=(BETA1, BETA2), rank=3)
    _feed(first, params[0], grads[:4])
    buffer = io.BytesIO()
    torch.save({"param": params[0].detach().clone(), "optimizer": first.state_dict()}, buffer)
    _feed(first, params[0], grads[4:])
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    with torch.no_grad():
        params[1].copy_(saved["param"])
    second = Sketchy([params[1]], betas=(BETA1, BETA2), rank=3)
    second.load_state_dict(saved["optimizer"])
    _feed(second, params[1], grads[4:])
    assert torch.equal(params[0], params[1])


def test_sketchy_outpaces_adam_on_an_ill_conditioned_least_squares_problem():
    """Columns scaled over two decades: Adam's diagonal cannot undo the coupling that the
    left factor sees; at the same rate and steps Sketchy's loss ends far lower."""
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(200, 12, generator=generator, dtype=torch.float64) \
        * torch.logspace(0, -2, 12, dtype=torch.float64)
    target = inputs @ torch.randn(12, 5, generator=generator, dtype=torch.float64)
    final = {}
    for name in ("sketchy", "adam"):
        weight = torch.zeros(12, 5, dtype=torch.float64, requires_grad=True)
        optimizer = (Sketchy([weight], lr=1e-2, rank=4) if name == "sketchy"
                     else torch.optim.Adam([weight], lr=1e-2))
        for _ in range(300):
            optimizer.zero_grad()
            loss = (inputs @ weight - target).square().mean()
            loss.backward()
            optimizer.step()
        final[name] = float(loss.detach())
    assert final["sketchy"] < 0.1 * final["adam"]


def test_bad_arguments_are_refused():
    weight = torch.zeros(3, 3, requires_grad=True)
    with pytest.raises(ValueError, match="rank 0 must be an integer >= 1"):
        Sketchy([weight], rank=0)
    with pytest.raises(ValueError, match="betas"):
        Sketchy([weight], betas=(0.9, 1.0))


def test_a_sketchy_run_trains_resumes_exactly_and_is_monitored(tmp_path):
    root = Path(__file__).resolve().parents[1]
    def config(adam):
        return pinnsketch.load_config(
            root / "problems" / "poisson.yaml",
            tiny_overrides(adam, 0, eval_every=5) + [
                "output.plots=false", "train.dtype=float64", "train.first_order=sketchy",
                "train.sketchy_rank=4", "train.lr=1e-2", "monitor.enabled=true",
                "monitor.every=2"])

    full = pinnsketch.train(config(20), out=tmp_path / "a")
    pinnsketch.train(config(10), out=tmp_path / "b")
    part = pinnsketch.train(config(20), resume=tmp_path / "b")
    for p, q in zip(full.model.parameters(), part.model.parameters()):
        assert torch.equal(p, q)
    losses = [r["loss_total"] for r in full.metrics]
    assert losses[-1] < 0.8 * losses[0] and full.metrics[-1]["rel_l2"] < 0.9
    data = json.loads((tmp_path / "a" / "diagnosis.json").read_text())
    assert data["monitor"]["checks"]["adam"] == 10
    with pytest.raises(pinnsketch.ConfigError, match="train.first_order"):
        pinnsketch.load_config(root / "problems" / "poisson.yaml", ["train.first_order=lion"])
