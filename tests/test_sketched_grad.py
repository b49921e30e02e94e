"""Sketched data-term weight gradients: exactness, gradcheck, convergence in rank, memory."""
from __future__ import annotations

import math

import pytest
import torch

from pinnsketch.memory import saved_tensor_bytes
from pinnsketch.architectures import ACTIVATIONS, INITIALIZERS, MLP
from pinnsketch.model import PINN
from pinnsketch.sketch.rank import RankController
from pinnsketch.sketch.sketched_grad import (SketchedGradient, SketchedLinearFunction,
                                             one_pass_factors, truncation_errors)
from pinnsketch.sketch.three_sketch import ThreeSketch

# float64 round-off of gradients built from a few QR/SVD/least-squares steps on O(1) data,
# relative to the gradient's norm; observed ~1e-15.
GRAD_RTOL_F64 = 1e-11
# Three-sketch fixed-rank error against the SVD optimum ‖A − A_r‖_F: Tropp et al. 2019
# bound it by a constant factor (≈ τ_{r+1} + 2‖A − Â‖); 3 leaves room for one random draw.
SKETCH_VS_SVD_FACTOR = 3.0


def _pinn(width: int = 16, depth: int = 3, activation: str = "tanh", seed: int = 0,
          transform: bool = False) -> PINN:
    generator = torch.Generator().manual_seed(seed)
    mlp = MLP(2, 1, width, depth, activation=ACTIVATIONS[activation],
              init=INITIALIZERS["xavier_normal"], generator=generator).double()
    output = (lambda z, raw: -torch.sin(math.pi * z[:, 0]) + z[:, 1] * (1 - z[:, 0] ** 2) * raw
              ) if transform else None
    return PINN(mlp, lows=(-1.0, 0.0), highs=(1.0, 1.0), output_transform=output).double()


def _data(n: int, distinct: int | None = None, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Data rows: points (n, 2) in [−1, 1]×[0, 1] and values (n,); with ``distinct``, only
    that many different points, repeated (every activation matrix then has rank ≤ distinct)."""
    generator = torch.Generator().manual_seed(seed)
    m = n if distinct is None else distinct
    points = torch.rand(m, 2, generator=generator, dtype=torch.float64) * torch.tensor([2.0, 1.0])
    points = (points - torch.tensor([1.0, 0.0])).repeat(n // m, 1)
    values = torch.randn(n, generator=generator, dtype=torch.float64)
    return points, values


def _grads(model: PINN, forward, points, values) -> list[torch.Tensor]:
    model.zero_grad(set_to_none=True)
    (forward(points) - values).square().mean().backward()
    return [p.grad.clone() for p in model.parameters()]


def _sketched(model: PINN, variant: str, rank: int, n_rows: int, seed: int = 5):
    return SketchedGradient(model, rank=rank, variant=variant, n_rows=n_rows,
                            generator=torch.Generator().manual_seed(seed))


def _saved_bytes(forward, points, values) -> int:
    return saved_tensor_bytes(lambda: (forward(points) - values).square().mean())


# -- exactness ------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["batch", "ema"], ids=["batch", "ema"])
@pytest.mark.parametrize("transform", [False, True], ids=["plain", "output-transform"])
def test_exact_when_rank_covers_activations(variant, transform):
    """3 distinct data points → every activation matrix has rank ≤ 3 ≤ r: exact gradients."""
    model = _pinn(transform=transform)
    points, values = _data(60, distinct=3)
    exact = _grads(model, model, points, values)
    sketch = _sketched(model, variant, rank=4, n_rows=60)
    for _ in range(2):  # the second ema step averages two identical matrices: still exact
        got = _grads(model, lambda z: sketch.forward(model, z), points, values)
        for g_exact, g_sketch in zip(exact, got):
            error = torch.linalg.norm(g_sketch - g_exact)
            assert error <= GRAD_RTOL_F64 * torch.linalg.norm(g_exact)
    assert sketch.sketched_layers() == [1, 2, 3]


@pytest.mark.parametrize("fuse_tanh", [True, False], ids=["tanh-fused", "identity"])
def test_function_passes_gradcheck_at_full_rank(fuse_tanh):
    generator = torch.Generator().manual_seed(3)
    # A = act(x) of rank 2 (for tanh: x = atanh of a rank-2 matrix with entries in (−1, 1)).
    low = torch.randn(12, 2, generator=generator, dtype=torch.float64) @ \
        torch.randn(2, 7, generator=generator, dtype=torch.float64)
    low = 0.8 * low / low.abs().max()
    x = (torch.atanh(low) if fuse_tanh else low).requires_grad_(True)
    weight = torch.randn(5, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, generator=generator, dtype=torch.float64, requires_grad=True)
    sketch_generator = torch.Generator().manual_seed(4)

    def factorize(a):
        return one_pass_factors(a, 3, sketch_generator)

    assert torch.autograd.gradcheck(
        lambda x_, w_, b_: SketchedLinearFunction.apply(x_, w_, b_, fuse_tanh, factorize),
        (x, weight, bias))


def test_error_decreases_with_rank():
    """Relative error of the full weight gradient on distinct points falls with r: each
    doubling of r gains, and r = 16 is 100× better than r = 1 (log-log slope < −1)."""
    model = _pinn(width=32)
    points, values = _data(256)
    exact = torch.cat([g.reshape(-1) for g in _grads(model, model, points, values)])
    ranks, errors = [1, 2, 4, 8, 16], []
    for rank in ranks:
        sketch = _sketched(model, "batch", rank, n_rows=256)
        got = torch.cat([g.reshape(-1) for g in
                         _grads(model, lambda z: sketch.forward(model, z), points, values)])
        errors.append(float(torch.linalg.norm(got - exact) / torch.linalg.norm(exact)))
    assert all(b < a for a, b in zip(errors, errors[1:])), errors
    slope = torch.linalg.lstsq(
        torch.stack([torch.log(torch.tensor(ranks, dtype=torch.float64)),
                     torch.ones(len(ranks), dtype=torch.float64)], 1),
        torch.log(torch.tensor(errors, dtype=torch.float64))[:, None]).solution[0, 0]
    assert slope < -1.0, (slope, errors)
    assert errors[-1] < 1e-2 * errors[0], errors


@pytest.mark.parametrize("rank", [2, 4, 8], ids=["r2", "r4", "r8"])
def test_one_pass_factors_near_svd_optimum(rank):
    generator = torch.Generator().manual_seed(rank)
    # 300×40 with singular values 2^{-j}: the sketch must find the leading subspace.
    u = torch.linalg.qr(torch.randn(300, 40, generator=generator, dtype=torch.float64)).Q
    v = torch.linalg.qr(torch.randn(40, 40, generator=generator, dtype=torch.float64)).Q
    sigma = 2.0 ** -torch.arange(40, dtype=torch.float64)
    a = (u * sigma) @ v.mT
    left, right = one_pass_factors(a, rank, generator)
    assert left.shape == (300, rank) and right.shape == (40, rank)
    optimum = torch.linalg.norm(sigma[rank:])
    assert torch.linalg.norm(a - left @ right.mT) <= SKETCH_VS_SVD_FACTOR * optimum


def _last_hidden(model: PINN, points: torch.Tensor) -> torch.Tensor:
    """The output layer's input (N×w): the last tanh's output, from an exact forward."""
    captured = []
    hook = model.network.net[-2].register_forward_hook(lambda _m, _i, out: captured.append(out))
    with torch.no_grad():
        model(points)
    hook.remove()
    return captured[0]


def test_ema_gradient_uses_the_bias_corrected_average_of_the_inputs():
    """Two steps, the weights moved in between, 3 distinct points (every input has rank
    ≤ 3 ≤ r): the output layer's weight gradient must be Gy₂ᵀ Ā with
    Ā = (β(1−β)A₁ + (1−β)A₂)/(1 − β²), the bias-corrected EMA (METHOD.md §3), not Gy₂ᵀA₂."""
    beta = 0.5
    model = _pinn()
    points, values = _data(60, distinct=3)
    sketch = SketchedGradient(model, rank=4, variant="ema", beta=beta, n_rows=60,
                              generator=torch.Generator().manual_seed(8))
    generator = torch.Generator().manual_seed(9)
    inputs = []
    for step in range(2):
        if step:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.1 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
        inputs.append(_last_hidden(model, points))
        got = _grads(model, lambda z: sketch.forward(model, z), points, values)
    with torch.no_grad():
        gy = 2 * (model(points) - values) / len(values)   # ∂L/∂u, no output transform
    average = (beta * (1 - beta) * inputs[0] + (1 - beta) * inputs[1]) / (1 - beta ** 2)
    expected = gy[None, :] @ average
    assert torch.linalg.norm(got[-2] - expected) <= GRAD_RTOL_F64 * torch.linalg.norm(expected)
    current = gy[None, :] @ inputs[1]
    assert torch.linalg.norm(got[-2] - current) > 1e-3 * torch.linalg.norm(current)


def test_truncation_errors_match_direct_residuals():
    generator = torch.Generator().manual_seed(12)
    a = torch.randn(80, 3, generator=generator, dtype=torch.float64) @ \
        torch.randn(3, 30, generator=generator, dtype=torch.float64)
    a += 1e-2 * torch.randn(80, 30, generator=generator, dtype=torch.float64)
    sketch = ThreeSketch(80, 30, 4, generator=generator, beta=0.0, error_probes=0)
    sketch.update(a)
    q, core, p = sketch.reconstruct()
    u, sigma, vh = torch.linalg.svd(core)
    direct = torch.stack([torch.linalg.norm(a - q @ ((u[:, :j] * sigma[:j]) @ vh[:j]) @ p.mT)
                          for j in range(1, len(sigma) + 1)]) / torch.linalg.norm(a)
    assert torch.allclose(truncation_errors(a, q, core, p), direct, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("variant", ["batch", "ema"], ids=["batch", "ema"])
def test_adaptive_rank_grows_until_the_activations_fit(variant):
    """Starting at r = 1 with tol 1e-3 and patience 1, the controller must raise r, and
    the rank it settles on must meet the tolerance on the worst layer."""
    model = _pinn(width=16)
    points, values = _data(64)
    controller = RankController(1, 12, 1e-3, patience=1)
    sketch = SketchedGradient(model, rank=1, variant=variant, n_rows=64,
                              generator=torch.Generator().manual_seed(2),
                              adaptive_rank=controller)
    for _ in range(4):
        _grads(model, lambda z: sketch.forward(model, z), points, values)
    assert sketch.rank == controller.rank > 1
    # The output layer's input, sketched afresh at the settled rank, meets the tolerance.
    a = _last_hidden(model, points)
    left, right = one_pass_factors(a, sketch.rank, torch.Generator().manual_seed(3))
    assert torch.linalg.norm(a - left @ right.mT) <= 1e-3 * torch.linalg.norm(a)
    if variant == "ema":
        assert all(s.rank == sketch.rank for s in sketch._sketches.values())
    with pytest.raises(ValueError, match=r"adaptive_rank: its rank 1 differs from rank=2"):
        SketchedGradient(model, rank=2, generator=torch.Generator(),
                         adaptive_rank=RankController(1, 4, 1e-3))


def test_forward_values_and_output_bias_gradient_are_exact_at_low_rank():
    """Only weight gradients are sketched: u is exact, and the output layer's bias gradient
    (Σ Gy, with Gy exact above the last sketched input) is exact even at r = 1."""
    model = _pinn(transform=True)
    points, values = _data(128)
    exact = _grads(model, model, points, values)
    sketch = _sketched(model, "batch", rank=1, n_rows=128)
    with torch.no_grad():
        reference = model(points)
    u = sketch.forward(model, points)
    assert torch.equal(u.detach(), reference)
    got = _grads(model, lambda z: sketch.forward(model, z), points, values)
    assert torch.allclose(got[-1], exact[-1], rtol=GRAD_RTOL_F64, atol=0.0)
    assert not torch.allclose(got[-2], exact[-2], rtol=1e-3)  # sketched weight: approximate


# -- memory ---------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["tanh", "sin"], ids=["tanh", "sin"])
def test_saved_bytes_match_closed_form(activation):
    """Saved storages of the data loss's graph, N points, d_0 = 2, D hidden layers of width w,
    float64 (8 bytes), no output transform:

    exact     8·[N d_0 + D N w·c + (D−1) w² + w + N]
    sketched  8·[N d_0 + D (N w·(c−1) + r(N + w)) + (D−1) w² + w + N]

    with c = 1 for tanh (its saved output is the next Linear's input: one storage) and c = 2
    for sin (saves its input, the Linear saves its output). N d_0: the first layer's input;
    (D−1) w² + w: the weights of layers that back-propagate to their input; N: the residual
    kept by square().
    """
    n, width, depth, rank = 512, 64, 3, 4
    model = _pinn(width=width, depth=depth, activation=activation)
    points, values = _data(n)
    c = 1 if activation == "tanh" else 2
    common = n * 2 + (depth - 1) * width ** 2 + width + n
    exact_bytes = 8 * (common + depth * n * width * c)
    sketched_bytes = 8 * (common + depth * (n * width * (c - 1) + rank * (n + width)))
    sketch = _sketched(model, "batch", rank, n_rows=n)
    assert _saved_bytes(model, points, values) == exact_bytes
    assert _saved_bytes(lambda z: sketch.forward(model, z), points, values) == sketched_bytes
    # r/w = 1/16 here: ≈ 85% saved with tanh, ≈ 45% with sin (its own input stays).
    saving = 1 - sketched_bytes / exact_bytes
    assert saving > (0.8 if activation == "tanh" else 0.4)


def test_ema_state_is_constant_in_steps():
    model = _pinn(width=16)
    points, values = _data(64)
    sketch = _sketched(model, "ema", rank=2, n_rows=64)
    sizes = []
    for _ in range(3):
        _grads(model, lambda z: sketch.forward(model, z), points, values)
        sizes.append(sketch.nbytes())
    assert sizes[0] > 0 and len(set(sizes)) == 1
    assert _sketched(model, "batch", rank=2, n_rows=64).nbytes() == 0


# -- state ----------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["batch", "ema"], ids=["batch", "ema"])
def test_state_dict_resumes_exactly(variant):
    model = _pinn(width=16)
    points, values = _data(64)
    first = _sketched(model, variant, rank=2, n_rows=64, seed=7)
    step = lambda s: _grads(model, lambda z: s.forward(model, z), points, values)  # noqa: E731
    step(first)
    state = first.state_dict()
    expected = step(first)
    second = _sketched(model, variant, rank=2, n_rows=64, seed=99)
    second.load_state_dict(state)
    for a, b in zip(expected, step(second)):
        assert torch.equal(a, b)
    assert second.steps == first.steps


def test_no_grad_forward_is_the_model_and_leaves_state():
    model = _pinn(transform=True)
    points, _ = _data(32)
    sketch = _sketched(model, "ema", rank=2, n_rows=32)
    before = sketch.state_dict()
    with torch.no_grad():
        assert torch.equal(sketch.forward(model, points), model(points))
    assert sketch.steps == 0
    assert torch.equal(sketch.state_dict()["generator"], before["generator"])


# -- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"rank": 0}, r"rank: got 0"),
    ({"variant": "svd"}, r"variant: got 'svd' \(allowed: batch, ema\)"),
    ({"beta": 1.0}, r"beta: got 1.0"),
    ({"variant": "ema", "n_rows": None}, r"n_rows: got None"),
], ids=["rank", "variant", "beta", "ema-needs-n_rows"])
def test_bad_arguments_name_field_value_and_choices(kwargs, match):
    arguments = {"rank": 2, "generator": torch.Generator(), **kwargs}
    with pytest.raises(ValueError, match=match):
        SketchedGradient(_pinn(), **arguments)


def test_ema_rejects_a_different_batch_size():
    model = _pinn()
    sketch = _sketched(model, "ema", rank=2, n_rows=32)
    with pytest.raises(ValueError, match=r"points: got 16 rows.*n_rows=32"):
        sketch.forward(model, _data(16)[0])
