"""The failure-mode problems (convection, reaction, wave), Helmholtz and Allen–Cahn: their
exact solutions through the library's residual code, their references against independent
evaluations, the condition residuals, the ETDRK4 solver and the reference cache."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import pinnsketch
from pinnsketch.config import config_from_dict
from conftest import RESIDUAL_ATOL_F64, tiny_overrides
from pinnsketch.domain import Domain
from pinnsketch.problems import (AllenCahn, Convection, Helmholtz2D, Reaction, Wave,
                                 neumann_residual, periodic_residual, time_derivative_residual)
from pinnsketch.references.allen_cahn import allen_cahn_solution
from pinnsketch.references.cache import cached_arrays
from pinnsketch.references.etdrk4 import SpectralSolution, etdrk4, wavenumbers
from pinnsketch.sampling import Sampler
from pinnsketch.training.checks import run_terms

ROOT = Path(__file__).resolve().parents[1]


class Exact(torch.nn.Module):
    """A 'network' that returns a closed-form u(points) (written here, independently of the
    problems' numpy references)."""

    def __init__(self, formula):
        super().__init__()
        self.formula = formula

    def forward(self, points):
        return self.formula(points[:, 0], points[:, 1])


def _convection(beta):
    return lambda x, t: torch.sin(x - beta * t)


def _reaction(rho):
    def u(x, t):
        g = torch.exp(-(x - math.pi) ** 2 / (2 * (math.pi / 4) ** 2))
        return g / (g + (1 - g) * torch.exp(-rho * t))
    return u


def _wave(c, beta):
    return lambda x, t: (torch.sin(math.pi * x) * torch.cos(c * math.pi * t)
                         + 0.5 * torch.sin(beta * math.pi * x) * torch.cos(beta * c * math.pi * t))


def _helmholtz(x, y):
    return torch.sin(math.pi * x) * torch.sin(4 * math.pi * y)


CASES = {
    "convection": (Convection(Convection.Options(beta=40.0)), _convection(40.0), 40.0),
    "reaction": (Reaction(), _reaction(5.0), 5.0),
    "wave": (Wave(), _wave(2.0, 5.0), 2.0 * 5.0 * math.pi),
    "helmholtz2d": (Helmholtz2D(), _helmholtz, 17 * math.pi ** 2),
}


def _points(problem, measure, n=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    sampler = Sampler(problem.domain, "uniform", gen)
    return getattr(sampler, measure)(n).requires_grad_(True)


@pytest.mark.parametrize("name", list(CASES))
def test_exact_solution_has_zero_residuals(name):
    problem, formula, scale = CASES[name]
    model = Exact(formula)
    terms = problem.physics_terms(False)
    batch = {t: _points(problem, problem.term_measures[t]) for t in terms}
    residuals = problem.residuals(model, batch)
    assert set(residuals) == set(terms)
    for term, r in residuals.items():
        # Round-off of derivatives of O(scale) (β = 40 multiplies u_x; (βcπ)² the wave's u_tt).
        tolerance = RESIDUAL_ATOL_F64 * (scale ** 2 if name == "wave" else scale)
        worst = float(r.detach().abs().max())
        assert worst < tolerance, (term, worst)
    # The numpy reference is the same function.
    grid, shape = problem.evaluation_grid()
    points = torch.from_numpy(grid)
    np.testing.assert_allclose(problem.reference(grid),
                               formula(points[:, 0], points[:, 1]).numpy(),
                               rtol=0, atol=1e-12)
    assert np.prod(shape) == len(grid)


def test_a_wrong_solution_leaves_residuals():
    # The residual code is not vacuous: the convection solution with the wrong speed fails
    # the PDE by (β − β') cos(x − β't) and a non-periodic function fails periodicity.
    problem = Convection(Convection.Options(beta=40.0))
    points = _points(problem, "interior")
    wrong = problem.pde_residual(Exact(_convection(39.0)), points)
    x, t = points[:, 0], points[:, 1]
    torch.testing.assert_close(wrong, torch.cos(x - 39.0 * t), rtol=1e-10, atol=1e-10)
    ramp = problem.boundary_residual(Exact(lambda x, t: x * t), _points(problem, "boundary"))
    t_b = _points(problem, "boundary")[:, 1]
    torch.testing.assert_close(ramp[:, 0], -2 * math.pi * t_b)  # u(0) − u(2π)
    torch.testing.assert_close(ramp[:, 1], torch.zeros_like(t_b))  # equal slopes


def test_condition_residuals_against_hand_derivatives():
    domain = Domain((0.0, 0.0), (1.0, 2.0), time=(0.0, 1.0))
    gen = torch.Generator().manual_seed(1)
    points = torch.rand(32, 3, generator=gen, dtype=torch.float64).requires_grad_(True)
    model = Exact(lambda x, y: x ** 2 * y)  # uses columns 0 and 1 only; u_t = 0
    normals = torch.zeros(32, 3, dtype=torch.float64)
    normals[:, 0] = 1.0
    x, y = points[:, 0], points[:, 1]
    torch.testing.assert_close(neumann_residual(model, points, normals, torch.zeros(32)
                                                .double()), 2 * x * y)
    wave_like = Exact(lambda x, t: torch.sin(x) * t ** 2)
    torch.testing.assert_close(time_derivative_residual(wave_like, points[:, [0, 1]],
                                                        torch.zeros(32).double()),
                               2 * torch.sin(x) * y)
    periodic = Exact(lambda x, t: torch.sin(math.pi * x) * t)  # period 2 in x: not 1
    r = periodic_residual(periodic, points[:, [0, 1]], Domain((0.0,), (1.0,), time=(0.0, 2.0)))
    torch.testing.assert_close(r[:, 0], torch.zeros(32).double(), atol=1e-15, rtol=0)
    torch.testing.assert_close(r[:, 1], 2 * math.pi * y)  # slopes π t and −π t


# ------------------------------------------------------------------------------------------
# ETDRK4 and the Allen–Cahn reference
# ------------------------------------------------------------------------------------------
def _allen_cahn_ode(n, epsilon, gamma):
    k = wavenumbers(n, 2.0)
    linear = -epsilon * k ** 2 + gamma
    nonlinear = lambda v: -gamma * np.fft.rfft(np.fft.irfft(v, n=n) ** 3)
    x = -1 + 2 * np.arange(n) / n
    return x, linear, nonlinear


def test_etdrk4_matches_an_independent_integrator():
    # The same Fourier semi-discretisation (128 modes, ε = 0.01) integrated by SciPy's
    # DOP853 at tight tolerances, in physical space.
    n, epsilon, gamma = 128, 0.01, 5.0
    x, linear, nonlinear = _allen_cahn_ode(n, epsilon, gamma)
    u0 = x ** 2 * np.cos(np.pi * x)
    states = etdrk4(np.fft.rfft(u0), linear, nonlinear, dt=1e-3, steps=500, save_every=500)
    ours = np.fft.irfft(states[-1], n=n)
    k = wavenumbers(n, 2.0)
    rhs = lambda t, u: (np.fft.irfft(-epsilon * k ** 2 * np.fft.rfft(u), n=n)
                        + gamma * (u - u ** 3))
    theirs = solve_ivp(rhs, (0.0, 0.5), u0, method="DOP853", rtol=1e-12, atol=1e-12).y[:, -1]
    assert np.max(np.abs(ours - theirs)) < 1e-9


def test_etdrk4_is_exact_for_a_linear_equation():
    n = 64
    k = wavenumbers(n, 2 * math.pi)
    linear = -0.3 * k ** 2 + 1j * k
    v0 = np.fft.rfft(np.exp(np.sin(-math.pi + 2 * math.pi * np.arange(n) / n)))
    states = etdrk4(v0, linear, lambda v: 0 * v, dt=0.01, steps=100, save_every=100)
    np.testing.assert_allclose(states[-1], v0 * np.exp(linear * 1.0), rtol=1e-12, atol=1e-12)


def test_spectral_solution_interpolates_a_band_limited_field_exactly():
    n = 32
    x = -1 + 2 * np.arange(n) / n
    times = np.linspace(0.0, 1.0, 101)
    field = lambda x, t: np.sin(3 * np.pi * x) * np.exp(-t) + np.cos(np.pi * x) * t ** 2
    modes = np.stack([np.fft.rfft(field(x, t)) for t in times])
    solution = SpectralSolution(times, modes, n, -1.0, 2.0)
    gen = np.random.default_rng(0)
    xs, ts = gen.uniform(-1, 1, 500), gen.uniform(0, 1, 500)
    np.testing.assert_allclose(solution(xs, ts), field(xs, ts), atol=1e-7)  # spline in t
    on_grid = solution(x[::4], np.full(8, times[37]))                      # exact read-out
    np.testing.assert_allclose(on_grid, field(x[::4], times[37]), atol=1e-13)


def test_allen_cahn_reference_self_converges_at_its_resolution():
    # Doubling the modes at the shipped resolution changes u on the evaluation grid by
    # < 1e-6 (relative L2); at 512 modes the same doubling changes it by more.
    grid, _ = AllenCahn().evaluation_grid()
    x, t = grid[:, 0], grid[:, 1]
    shipped = allen_cahn_solution(cache=False)(x, t)
    finer = allen_cahn_solution(modes=4096, cache=False)(x, t)
    change = np.linalg.norm(shipped - finer) / np.linalg.norm(finer)
    assert change < 1e-6
    coarse = allen_cahn_solution(modes=512, cache=False)(x, t)
    assert np.linalg.norm(coarse - shipped) / np.linalg.norm(shipped) > 1e-6
    assert np.abs(shipped).max() <= 1.0 + 1e-6  # the maximum principle: |u| ≤ 1
    np.testing.assert_allclose(allen_cahn_solution(cache=False)(x[t == 0], t[t == 0]),
                               x[t == 0] ** 2 * np.cos(np.pi * x[t == 0]), atol=1e-12)


def test_reference_cache_reuses_detects_corruption_and_keys_on_every_parameter(
        tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PINNSKETCH_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(5.0), "b": np.eye(2)}

    first = cached_arrays("demo", {"p": 1}, compute)
    again = cached_arrays("demo", {"p": 1}, compute)
    assert len(calls) == 1 and np.array_equal(first["a"], again["a"])
    (path,) = tmp_path.glob("demo-*.npz")
    cached_arrays("demo", {"p": 2}, compute)  # another key: another file
    assert len(calls) == 2 and len(list(tmp_path.glob("demo-*.npz"))) == 2
    path.write_bytes(path.read_bytes()[:40])  # truncated
    restored = cached_arrays("demo", {"p": 1}, compute)
    assert len(calls) == 3 and np.array_equal(restored["b"], np.eye(2))
    assert "unreadable" in caplog.text
    with path.open("rb") as f, np.load(f) as stored:  # valid, but its checksum fails
        arrays = dict(stored)
    arrays["a"] = arrays["a"] + 1
    np.savez(path, **arrays)
    assert np.array_equal(cached_arrays("demo", {"p": 1}, compute)["a"], np.arange(5.0))
    assert len(calls) == 4 and "checksum" in caplog.text


# ------------------------------------------------------------------------------------------
# The shipped configs train
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["convection", "reaction", "wave", "allen_cahn",
                                  "helmholtz2d"])
def test_shipped_config_runs(name, tmp_path):
    config = pinnsketch.load_config(ROOT / "problems" / f"{name}.yaml",
                                    tiny_overrides(10, 5, eval_every=5)
                                    + ["output.plots=false"])
    run = pinnsketch.train(config, out=tmp_path / name)
    assert math.isfinite(run.summary["rel_l2"]) and run.summary["steps"] >= 10
    terms = run_terms(config, pinnsketch.load_problem(config))  # allen_cahn embeds bc
    last = run.metrics[-1]
    assert set(last["loss"]) == set(terms), last


def test_a_term_without_a_measure_is_a_config_error():
    class Unmeasured(Wave):
        term_measures = {"pde": "interior", "bc": "boundary", "ic": "initial"}  # no ic_t

    config = config_from_dict({"train": {"adam_steps": 1}})
    with pytest.raises(pinnsketch.ConfigError, match="'ic_t' has measure None.*allowed: "
                                                     "interior, boundary, initial"):
        pinnsketch.check_config(config, problem=Unmeasured())
