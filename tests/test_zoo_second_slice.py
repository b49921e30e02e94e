"""KdV, Klein–Gordon and reaction–diffusion: the KdV reference against an exact soliton, its
conservation laws and its self-convergence; ETDRK4 with a complex (dispersive) symbol
against the exact solution of a forced linear equation; the splitting reference's order,
against ETDRK4 and against the exact logistic flow; the problems' residuals on closed-form
solutions; the shipped configs train."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import pinnsketch
from conftest import RESIDUAL_ATOL_F64, tiny_overrides
from pinnsketch.problems import KdV, KleinGordon, ReactionDiffusion
from pinnsketch.references.etdrk4 import SpectralSolution, etdrk4, wavenumbers
from pinnsketch.references.kdv import kdv_modes, kdv_solution
from pinnsketch.references.reaction_diffusion import reaction_diffusion_solution
from pinnsketch.sampling import Sampler
from pinnsketch.training.checks import run_terms

ROOT = Path(__file__).resolve().parents[1]
DISPERSION = 0.0025


class Exact(torch.nn.Module):
    def __init__(self, formula):
        super().__init__()
        self.formula = formula

    def forward(self, points):
        return self.formula(points[:, 0], points[:, 1])


def _points(problem, measure, n=64, seed=0):
    sampler = Sampler(problem.domain, "uniform", torch.Generator().manual_seed(seed))
    return getattr(sampler, measure)(n).requires_grad_(True)


def _soliton(c: float, x0: float, lib=np):
    """u = 3c sech²(√c (x − x0 − ct) / (2δ)): an exact KdV solution on the line."""
    width = 2 * math.sqrt(DISPERSION) / math.sqrt(c)
    return lambda x, t: 3 * c / lib.cosh((x - x0 - c * t) / width) ** 2


def test_etdrk4_is_exact_for_a_forced_equation_with_a_complex_symbol():
    # û' = L û + b with b constant: û(t) = e^{Lt} û₀ + (e^{Lt} − 1)/L · b, which ETDRK4's
    # φ-functions reproduce exactly; L = i δ² k³ (dispersion) exercises complex coefficients.
    n = 64
    k = wavenumbers(n, 2.0)
    linear = 1j * DISPERSION * k ** 3 - 0.1
    generator = np.random.default_rng(0)
    v0 = generator.standard_normal(k.size) + 1j * generator.standard_normal(k.size)
    forcing = generator.standard_normal(k.size) + 1j * generator.standard_normal(k.size)
    states = etdrk4(v0, linear, lambda v: forcing, dt=0.01, steps=50, save_every=50)
    exact = np.exp(linear * 0.5) * v0 + (np.exp(linear * 0.5) - 1) / linear * forcing
    np.testing.assert_allclose(states[-1], exact, rtol=1e-11, atol=1e-11)


def test_the_kdv_solver_carries_a_soliton_exactly():
    # Width 0.1: on the period 2 the tails are ~1e-8, the accuracy this test can ask for.
    soliton = _soliton(1.0, 0.0)
    periodic = lambda x, t: soliton(((x - t + 1) % 2) - 1, 0.0)
    arrays = kdv_modes(lambda x: soliton(x, 0.0), DISPERSION, 0.5, modes=256, dt=1e-4)
    solution = SpectralSolution(arrays["times"], arrays["modes"], 256, -1.0, 2.0)
    x = np.linspace(-1, 1, 300, endpoint=False)
    for t in (0.1, 0.3, 0.5):
        np.testing.assert_allclose(solution(x, np.full_like(x, t)), periodic(x, t),
                                   rtol=0, atol=5e-8)


def test_the_kdv_reference_conserves_mass_and_momentum_and_self_converges():
    solution = kdv_solution(cache=False)
    n = solution.n
    x = -1.0 + 2.0 * np.arange(n) / n
    masses, momenta = [], []
    for t in solution.times[::20]:
        u = solution(x, np.full_like(x, t))  # on the solver's grid: exact read-out
        masses.append(u.mean())
        momenta.append((u ** 2).mean())
    assert max(abs(m) for m in masses) < 1e-13  # ∫ cos πx = 0, and ∫u is conserved
    assert np.ptp(momenta) / momenta[0] < 1e-9
    grid, _ = KdV().evaluation_grid()
    shipped = solution(grid[:, 0], grid[:, 1])
    finer = kdv_solution(modes=512, dt=5e-5, cache=False)(grid[:, 0], grid[:, 1])
    assert np.linalg.norm(shipped - finer) / np.linalg.norm(finer) < 1e-10
    coarse = kdv_solution(modes=96, cache=False)(grid[:, 0], grid[:, 1])
    assert np.linalg.norm(coarse - finer) / np.linalg.norm(finer) > 1e-8  # resolution matters
    np.testing.assert_allclose(shipped[grid[:, 1] == 0], np.cos(np.pi * grid[grid[:, 1] == 0, 0]),
                               atol=1e-12)


def test_kdv_residual_vanishes_on_a_soliton_and_not_on_a_wrong_speed():
    problem = KdV()
    points = _points(problem, "interior")
    exact = problem.pde_residual(Exact(_soliton(1.0, 0.0, torch)), points).detach()
    assert float(exact.abs().max()) < RESIDUAL_ATOL_F64 * 1e3  # u_xxx of a width-0.1 pulse: O(1e4)
    # A soliton moving at speed c' ≠ c (shape of c) fails by (c − c') u_x.
    c, wrong = 1.0, 1.2
    shape = _soliton(c, 0.0, torch)
    moving = lambda x, t: shape(x - (wrong - c) * t, t)
    residual = problem.pde_residual(Exact(moving), points).detach()
    x, t = points[:, 0].detach().requires_grad_(True), points[:, 1].detach()
    u_x = torch.autograd.grad(moving(x, t).sum(), x)[0]
    torch.testing.assert_close(residual, -(wrong - c) * u_x, rtol=1e-8, atol=1e-6)
    assert problem.boundary_residual(Exact(lambda x, t: torch.cos(math.pi * x) * t),
                                     _points(problem, "boundary")).abs().max() < 1e-12


def _klein_gordon(x, t):
    return x * torch.cos(5 * math.pi * t) + (x * t) ** 3


def test_klein_gordon_residuals_vanish_on_the_manufactured_solution():
    problem = KleinGordon()
    terms = problem.physics_terms(False)
    assert terms == ("pde", "bc", "ic", "ic_t")
    batch = {t: _points(problem, problem.term_measures[t]) for t in terms}
    residuals = problem.residuals(Exact(_klein_gordon), batch)
    for term, r in residuals.items():
        assert float(r.detach().abs().max()) < RESIDUAL_ATOL_F64 * 25 * math.pi ** 2, term
    # u + t² leaves u_tt − u_xx + u³ − f = 2 + (u + t²)³ − u³ and u_t(x, 0) = 0 still.
    points = batch["pde"]
    shifted = problem.pde_residual(Exact(lambda x, t: _klein_gordon(x, t) + t ** 2), points)
    x, t = points[:, 0], points[:, 1]
    u = _klein_gordon(x, t)
    torch.testing.assert_close(shifted.detach(), (2 + (u + t ** 2) ** 3 - u ** 3).detach(),
                               rtol=1e-9, atol=1e-9)
    grid, shape = problem.evaluation_grid()
    points = torch.from_numpy(grid)
    np.testing.assert_allclose(problem.reference(grid),
                               _klein_gordon(points[:, 0], points[:, 1]).numpy(), atol=1e-14)
    assert np.prod(shape) == len(grid)


def _gaussian(x):
    return np.exp(-((x - math.pi) ** 2) / (2 * (math.pi / 4) ** 2))


def _rd_grid():
    grid, _ = ReactionDiffusion().evaluation_grid()
    return grid[:, 0], grid[:, 1]


def test_the_splitting_reference_is_second_order_and_agrees_with_etdrk4():
    x, t = _rd_grid()
    solve = lambda **kw: reaction_diffusion_solution(_gaussian, "gaussian", cache=False,
                                                     **kw)(x, t)
    coarse, shipped, fine = solve(dt=2e-4), solve(), solve(dt=5e-5)
    ratio = np.linalg.norm(coarse - shipped) / np.linalg.norm(shipped - fine)
    assert 3.8 < ratio < 4.2  # Strang splitting: the error falls 4× per halving of h
    assert np.linalg.norm(shipped - fine) / np.linalg.norm(fine) < 1e-8
    # The same Fourier semi-discretisation integrated by ETDRK4 (no splitting).
    n, nu, rho = 256, 5.0, 5.0
    k = wavenumbers(n, 2 * math.pi)
    nodes = 2 * math.pi * np.arange(n) / n
    reaction = lambda v: rho * np.fft.rfft((lambda u: u - u * u)(np.fft.irfft(v, n=n)))
    states = etdrk4(np.fft.rfft(_gaussian(nodes)), -nu * k ** 2, reaction, dt=1e-4,
                    steps=10000, save_every=50)
    other = SpectralSolution(5e-3 * np.arange(len(states)), states, n, 0.0, 2 * math.pi)(x, t)
    assert np.linalg.norm(shipped - other) / np.linalg.norm(other) < 2e-8


def test_without_diffusion_the_reference_is_the_logistic_solution():
    x, t = _rd_grid()
    u = reaction_diffusion_solution(_gaussian, "gaussian", nu=1e-14, cache=False)(x, t)
    u0 = _gaussian(x)
    exact = u0 * np.exp(5.0 * t) / (u0 * np.exp(5.0 * t) + 1 - u0)
    assert np.max(np.abs(u - exact)) < 1e-10  # the evaluation grid is the solver's: exact read-out


def test_reaction_diffusion_residual_on_a_closed_form_function():
    problem = ReactionDiffusion()
    points = _points(problem, "interior")
    x, t = points[:, 0], points[:, 1]
    field = lambda x, t: torch.exp(-t) * torch.sin(x)
    residual = problem.pde_residual(Exact(field), points).detach()
    u = field(x, t).detach()
    # u_t = −u, u_xx = −u: r = −u + ν u − ρ u (1 − u).
    torch.testing.assert_close(residual, -u + 5.0 * u - 5.0 * u * (1 - u), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["kdv", "klein_gordon", "reaction_diffusion"])
def test_shipped_config_runs(name, tmp_path):
    config = pinnsketch.load_config(ROOT / "problems" / f"{name}.yaml",
                                    tiny_overrides(10, 5, eval_every=5) + ["output.plots=false"])
    run = pinnsketch.train(config, out=tmp_path / name)
    assert math.isfinite(run.summary["rel_l2"]) and run.summary["steps"] >= 10
    terms = run_terms(config, pinnsketch.load_problem(config))  # kdv embeds bc
    assert set(run.metrics[-1]["loss"]) == set(terms)
