"""Exact solutions give ~0 residual through the library's residual code (float64)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import RESIDUAL_ATOL_F64
from pinnsketch.problems import Burgers, Heat1D, Heat2D, Poisson
from pinnsketch.derivatives import gradient, laplacian, partial


class Exact(torch.nn.Module):
    """Wraps a closed-form u(z) as a 'model' so residual code can be checked on it."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, z):
        return self.fn(z)


def _points(n: int, lows, highs, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lows, highs = torch.tensor(lows, dtype=torch.float64), torch.tensor(highs, dtype=torch.float64)
    return (lows + torch.rand(n, len(lows), generator=g, dtype=torch.float64) * (highs - lows)).requires_grad_(True)


@pytest.mark.parametrize("solution", ["sin", "multiscale"])
def test_poisson_exact_solution_has_zero_residual(solution):
    problem = Poisson(Poisson.Options(solution=solution))
    z = _points(500, problem.domain.lows, problem.domain.highs)
    modes = {"sin": [(1.0, 1)], "multiscale": [(1.0, 1), (0.1, 8)]}[solution]
    model = Exact(lambda p: sum(a * torch.sin(k * math.pi * p[:, 0]) * torch.sin(k * math.pi * p[:, 1])
                                for a, k in modes))
    residual = problem.pde_residual(model, z)
    assert residual.abs().max().item() < RESIDUAL_ATOL_F64 * 1e3  # f reaches 0.1·128π² ≈ 126
    np.testing.assert_allclose(model(z).detach().numpy(), problem.reference(z.detach().numpy()),
                               atol=1e-14)


def test_heat1d_exact_series_has_zero_residual():
    problem = Heat1D()
    opts = problem.options
    z = _points(500, problem.domain.lows, problem.domain.highs)

    def exact(p):
        x, t = p[:, 0], p[:, 1]
        return sum(b * torch.exp(-opts.alpha * ((k + 1) * math.pi) ** 2 * t) * torch.sin((k + 1) * math.pi * x)
                   for k, b in enumerate(opts.coefficients))

    model = Exact(exact)
    assert problem.pde_residual(model, z).abs().max().item() < RESIDUAL_ATOL_F64
    residuals = problem.residuals(model, {"ic": problem.domain.initial(torch.rand(50, 2, dtype=torch.float64))})
    assert residuals["ic"].abs().max().item() < RESIDUAL_ATOL_F64
    np.testing.assert_allclose(model(z).detach().numpy(), problem.reference(z.detach().numpy()), atol=1e-12)


def test_heat2d_exact_series_has_zero_residual():
    problem = Heat2D()
    opts = problem.options
    z = _points(500, problem.domain.lows, problem.domain.highs)

    def exact(p):
        x, y, t = p[:, 0], p[:, 1], p[:, 2]
        return sum(a * torch.exp(-opts.alpha * math.pi ** 2 * (i * i + j * j) * t)
                   * torch.sin(i * math.pi * x) * torch.sin(j * math.pi * y)
                   for (i, j), a in zip(opts.modes, opts.amplitudes))

    model = Exact(exact)
    assert problem.pde_residual(model, z).abs().max().item() < RESIDUAL_ATOL_F64
    np.testing.assert_allclose(model(z).detach().numpy(), problem.reference(z.detach().numpy()), atol=1e-12)


def test_burgers_residual_matches_hand_derivatives():
    # Burgers has no closed form; on u = sin(2x + 1) e^{-t} the residual must equal the
    # hand-computed u_t + u u_x − ν u_xx.
    problem = Burgers()
    nu = problem.options.nu
    z = _points(500, problem.domain.lows, problem.domain.highs)
    model = Exact(lambda p: torch.sin(2 * p[:, 0] + 1) * torch.exp(-p[:, 1]))
    x, t = z[:, 0].detach(), z[:, 1].detach()
    u = torch.sin(2 * x + 1) * torch.exp(-t)
    u_x = 2 * torch.cos(2 * x + 1) * torch.exp(-t)
    u_xx = -4 * u
    expected = -u + u * u_x - nu * u_xx
    torch.testing.assert_close(problem.pde_residual(model, z).detach(), expected,
                               atol=RESIDUAL_ATOL_F64, rtol=0)


@pytest.mark.parametrize("problem_cls", [Burgers, Heat1D, Heat2D, Poisson],
                         ids=["burgers", "heat", "heat2d", "poisson"])
def test_output_transform_satisfies_constraints(problem_cls):
    # With the transform, any raw output meets BC/IC exactly: residuals vanish on them.
    problem = problem_cls()
    assert problem.physics_terms(hard_constraints=True) == ("pde",)
    g = torch.Generator().manual_seed(1)
    unit = torch.rand(200, problem.domain.dim, generator=g, dtype=torch.float64)
    raw = lambda p: torch.cos(3 * p.sum(dim=1)) + 2.0  # arbitrary, nowhere zero
    model = Exact(lambda p: problem.output_transform(p, raw(p)))
    boundary = problem.domain.boundary(unit, g)
    assert (model(boundary) - problem.boundary_value(boundary)).abs().max() < 1e-12
    if problem.domain.time is not None:
        initial = problem.domain.initial(unit)
        assert (model(initial) - problem.initial_value(initial)).abs().max() < 1e-12


def test_derivative_helpers_match_analytic_forms():
    z = _points(300, (-1.0, -1.0), (1.0, 1.0))
    u = torch.exp(z[:, 0]) * torch.sin(3 * z[:, 1])
    grad = gradient(u, z)
    x, y = z[:, 0].detach(), z[:, 1].detach()
    torch.testing.assert_close(grad[:, 0].detach(), torch.exp(x) * torch.sin(3 * y), atol=1e-13, rtol=0)
    torch.testing.assert_close(grad[:, 1].detach(), 3 * torch.exp(x) * torch.cos(3 * y), atol=1e-13, rtol=0)
    u_xy = partial(grad[:, 0], z, 1)
    torch.testing.assert_close(u_xy.detach(), 3 * torch.exp(x) * torch.cos(3 * y), atol=1e-13, rtol=0)
    lap = laplacian(u, z, axes=(0, 1))
    torch.testing.assert_close(lap.detach(), -8 * torch.exp(x) * torch.sin(3 * y), atol=1e-12, rtol=0)
