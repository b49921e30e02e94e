"""FrequentDirections against its guarantee ‖AᵀA − BᵀB‖₂ ≤ ‖A − A_k‖²_F/(ℓ − k) (Liberty 2013;
Ghashami et al. 2016) on random and adversarial streams, plain and β-decayed (Sketchy)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pinnsketch.sketch.frequent_directions import FrequentDirections

F64 = torch.float64
# Slack on inequalities between float64 quantities of size ‖A‖²_F ~ 1e2..1e4: round-off of
# the SVDs and Gram products, relative 1e-12 of ‖A‖²_F.
BOUND_RTOL_F64 = 1e-12
# Exact sketches (stream rank ≤ ℓ): δ = σ²_{ℓ+1} is round-off, relative ~1e-15 each shrink.
EXACT_REL_F64 = 1e-10


def _stacked(batches, beta):
    """A whose Gram is Σ_t β^{T−t} A_tᵀA_t: batch t scaled by β^{(T−t)/2}."""
    last = len(batches) - 1
    return torch.cat([b * beta ** ((last - t) / 2) for t, b in enumerate(batches)])


def _check_guarantee(sketch: FrequentDirections, a: torch.Tensor):
    gram = a.T @ a
    diff = gram - sketch.covariance()
    error = float(torch.linalg.matrix_norm(diff, ord=2))
    scale = float(torch.linalg.matrix_norm(a)) ** 2
    slack = BOUND_RTOL_F64 * scale
    sigma2 = np.linalg.svd(a.numpy(), compute_uv=False) ** 2
    ell = sketch.ell
    for k in range(ell):
        tail = float(sigma2[k:].sum())                         # ‖A − A_k‖²_F
        assert error <= tail / (ell - k) + slack, f"k={k}"
    # The tracked dropped mass certifies the error and obeys the one-better bound that the
    # mass argument gives it; the difference is PSD (B never overestimates A).
    dropped = float(sketch.dropped_mass)
    assert error <= dropped + slack
    for k in range(ell):
        assert dropped <= float(sigma2[k:].sum()) / (ell + 1 - k) + slack, f"k={k}"
    assert float(torch.linalg.eigvalsh(diff).min()) >= -slack


def _random_rows(n, d, generator, decay=0.9):
    scales = decay ** torch.arange(d, dtype=F64)
    return torch.randn(n, d, generator=generator, dtype=F64) * scales


def _adversarial(name: str, n: int, d: int, generator) -> torch.Tensor:
    if name == "flat":                  # orthonormal rows cycling: no direction dominates
        return torch.eye(d, dtype=F64).repeat(n // d + 1, 1)[:n]
    if name == "growing":               # later rows ever larger: old mass looks negligible
        return _random_rows(n, d, generator, 1.0) * torch.linspace(0.01, 10, n,
                                                                    dtype=F64)[:, None]
    if name == "phases":                # one direction at a time, each for a block of rows
        rows = torch.zeros(n, d, dtype=F64)
        rows[torch.arange(n), (torch.arange(n) * d) // n] = 1.0
        return rows
    if name == "trickle":               # ℓ strong directions first, then a long trickle in a
        rows = torch.zeros(n, d, dtype=F64)  # new one: truncated SVD would never admit it
        rows[:d - 1, :d - 1] = 10.0 * torch.eye(d - 1, dtype=F64)
        rows[d - 1:, d - 1] = 1.0
        return rows
    if name == "spike":                 # isotropic noise, then one huge direction at the end
        rows = _random_rows(n, d, generator, 1.0)
        rows[-5:] = 100.0 * torch.eye(d, dtype=F64)[0]
        return rows
    raise KeyError(name)


@pytest.mark.parametrize("ell", [4, 10, 20], ids=lambda v: f"ell{v}")
@pytest.mark.parametrize("batch", [1, 7, 64], ids=lambda v: f"b{v}")
@pytest.mark.parametrize("beta", [1.0, 0.97], ids=["plain", "decayed"])
def test_bound_on_random_streams(ell, batch, beta):
    gen = torch.Generator().manual_seed(0)
    batches = [_random_rows(batch, 32, gen) for _ in range(max(1, 400 // batch))]
    sketch = FrequentDirections(32, ell, beta=beta)
    for rows in batches:
        sketch.update(rows)
    _check_guarantee(sketch, _stacked(batches, beta))


@pytest.mark.parametrize("name", ["flat", "growing", "phases", "trickle", "spike"])
@pytest.mark.parametrize("batch", [1, 16], ids=lambda v: f"b{v}")
def test_bound_on_adversarial_streams(name, batch):
    gen = torch.Generator().manual_seed(1)
    d = 9 if name == "trickle" else 24                        # trickle: d = ℓ + 1 directions
    a = _adversarial(name, 320, d, gen)
    sketch = FrequentDirections(d, 8)
    batches = list(a.split(batch))
    for rows in batches:
        sketch.update(rows)
    _check_guarantee(sketch, a)


def test_exact_when_stream_rank_fits():
    gen = torch.Generator().manual_seed(2)
    basis = torch.randn(5, 30, generator=gen, dtype=F64)
    a = torch.randn(500, 5, generator=gen, dtype=F64) @ basis     # rank 5 ≤ ℓ − 1
    sketch = FrequentDirections(30, 6)
    for rows in a.split(9):
        sketch.update(rows)
    gram = a.T @ a
    assert float(torch.linalg.matrix_norm(gram - sketch.covariance()) /
                 torch.linalg.matrix_norm(gram)) <= EXACT_REL_F64


def test_ell_at_least_d_is_exact():
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(200, 6, generator=gen, dtype=F64)
    sketch = FrequentDirections(6, 6)
    for rows in a.split(13):
        sketch.update(rows)
    assert float(sketch.dropped_mass) == 0.0
    assert torch.allclose(sketch.covariance(), a.T @ a, rtol=EXACT_REL_F64, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_rows_and_memory_do_not_grow(dtype):
    d, ell = 20, 9
    sketch = FrequentDirections(d, ell, beta=0.9, dtype=dtype)
    gen = torch.Generator().manual_seed(4)
    sizes = {}
    for step in range(1, 1001):
        sketch.update(torch.randn(20, d, generator=gen, dtype=dtype))
        if step in (1, 10, 1000):
            sizes[step] = (tuple(sketch.sketch.shape), sketch.nbytes())
    size = torch.finfo(dtype).bits // 8
    assert set(sizes.values()) == {((ell, d), (ell * d + 1) * size)}


def test_state_round_trip_is_exact():
    gen = torch.Generator().manual_seed(5)
    batches = [torch.randn(3, 12, generator=gen, dtype=F64) for _ in range(12)]
    a, b = FrequentDirections(12, 5, beta=0.95), FrequentDirections(12, 5, beta=0.95)
    for rows in batches[:5]:
        a.update(rows)
    b.load_state_dict(a.state_dict())
    for rows in batches[5:]:
        a.update(rows)
        b.update(rows)
    assert torch.equal(a.sketch, b.sketch) and torch.equal(a.dropped_mass, b.dropped_mass)
    assert a.state_dict()["filled"] == b.state_dict()["filled"]


@pytest.mark.parametrize("kwargs,match", [
    ({"d": 0}, r"d: got 0, must be an integer >= 1"),
    ({"ell": 0}, r"ell: got 0"),
    ({"beta": 1.5}, r"beta: got 1.5, must be a float in \[0, 1\]"),
    ({"dtype": torch.int64}, r"dtype: got torch.int64, allowed"),
], ids=["d", "ell", "beta", "dtype"])
def test_validation(kwargs, match):
    args = {"d": 8, "ell": 4} | kwargs
    with pytest.raises(ValueError, match=match):
        FrequentDirections(args.pop("d"), args.pop("ell"), **args)


def test_bad_rows_and_state():
    sketch = FrequentDirections(8, 4)
    with pytest.raises(ValueError, match=r"rows: got shape \(3, 7\), expected \(b, 8\)"):
        sketch.update(torch.zeros(3, 7))
    with pytest.raises(ValueError, match=r"state\['ell'\]: got 5, this sketch has 4"):
        sketch.load_state_dict(FrequentDirections(8, 5).state_dict())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(6)
    batches = [_random_rows(11, 16, gen) for _ in range(20)]
    cpu, gpu = FrequentDirections(16, 6, beta=0.9), FrequentDirections(16, 6, beta=0.9,
                                                                       device="cuda")
    for rows in batches:
        cpu.update(rows)
        gpu.update(rows.cuda())
    assert torch.allclose(gpu.covariance().cpu(), cpu.covariance(), rtol=1e-9, atol=1e-9)
