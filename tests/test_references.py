"""Reference solutions against independent evaluations and the PDEs they solve (float64)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import minimize_scalar

from pinnsketch.references.cole_hopf import burgers_cole_hopf, burgers_reference_grid
from pinnsketch.references.heat_series import heat_1d_series, heat_2d_series

NU = 0.01 / math.pi

# --- tolerances (float64), each with its reason -------------------------------------------
# The brief's accuracy requirement for the Cole–Hopf reference; all three evaluations are
# converged to ~1e-14, so this is a requirement, not a measured margin.
QUADRATURE_AGREEMENT = 1e-10
# For ν other than the benchmark's, the documented claim: default nodes reach round-off.
OTHER_NU_AGREEMENT = 1e-13
# The brief's bound on u(±1, t); the quadrature gives ~1e-15 (sin(π(±1 − η)) pairs cancel to
# round-off only).
BOUNDARY_ATOL = 1e-12
# Odd symmetry: the Gauss–Hermite nodes are exactly antisymmetric, so u(−x) and −u(x) differ
# only by the order of summation: a few ulps of the O(1) terms (measured 7e-16).
SYMMETRY_ATOL = 1e-14
# FD residual with h = 1e-4 on smooth points: truncation h²·(u_ttt/6 + u u_xxx/6 + …) with
# third derivatives O(10²) gives ~1e-7 of the O(1) terms (measured 6e-7); round-off in
# ν·u_xx is 4ε·ν/h² ≈ 1e-10. 1e-5 of the largest term leaves a 15× margin and still fails
# for a 1% error in ν (ν·u_xx is up to 1e-2 of the terms).
FD_RELATIVE_RESIDUAL = 1e-5
# Richardson (4R(h/2) − R(h))/3 from h = 2e-3, 1e-3 cancels the h² term; what is left is
# O(h⁴) + round-off ε·ν/h² (measured 5e-9 of the terms).
RICHARDSON_RELATIVE_RESIDUAL = 1e-7
# A second-order scheme's log-log slope; measured 2.0000 (±1e-4) on these points.
FD_ORDER_ATOL = 0.05
# Basdevant et al. (1986): max_t |u_x(0, t)| = 152.00516 at t = 1.6037/π. The brief
# asks for 0.5 % and 0.01; measured agreement is 3e-9 and 4e-6, so the tolerances below are
# those of the quoted digits (152.00516 ± 5e-6 → 3.3e-8 relative; 1.6037 ± 5e-5) plus the
# FD truncation h²·|u_xxx/u_x|/6 ≈ 8e-9 at h = 1e-6 and the flatness of the maximum in t.
BASDEVANT_SLOPE = 152.00516
BASDEVANT_TIME = 1.6037 / math.pi
SLOPE_RTOL = 1e-7
PEAK_TIME_ATOL = 5e-5
# Heat series: exact sines and exponentials; sin(kπ) ≈ k·1.2e-16 at x = L.
SERIES_ATOL = 1e-14

# --- independent Cole–Hopf evaluations (no Gauss–Hermite) ---------------------------------
# Truncation: with k = 1/(2πν), log f ranges over [−k, k]; beyond |η| = √(4νt(2k + 40)) the
# Gaussian e^{−η²/4νt} ≤ e^{−2k−40}, so the integrand is below e^{−40} ≈ 4e-18 of its value at
# η = 0 — negligible against the peak it is scaled to.
TAIL_EXPONENT = 40.0
# The integrand is analytic and Gaussian-damped, so the trapezoid rule converges
# geometrically: against the module it is at round-off (2e-15) from 101 points on; 801 is an
# 8× margin.
TRAPEZOID_POINTS = 801


def _log_integrand(x, t, eta, nu):
    """log of f(x − η) e^{−η²/4νt}, up to the constant 1/(2πν)."""
    return -np.cos(np.pi * (x - eta)) / (2 * np.pi * nu) - eta ** 2 / (4 * nu * t)


def _trapezoid_cole_hopf(x: np.ndarray, t: np.ndarray, nu: float) -> np.ndarray:
    """Composite trapezoid in η on [−L, L], L = √(4νt(1/(πν) + 40)), per point (t > 0)."""
    k = 1 / (2 * np.pi * nu)
    flat_x, flat_t = x.ravel(), t.ravel()
    out = np.empty(flat_x.shape)
    for start in range(0, flat_x.size, 512):
        xs, ts = flat_x[start:start + 512, None], flat_t[start:start + 512, None]
        eta = np.sqrt(4 * nu * ts * (2 * k + TAIL_EXPONENT)) * np.linspace(-1, 1, TRAPEZOID_POINTS)
        exponent = _log_integrand(xs, ts, eta, nu)
        weight = np.exp(exponent - exponent.max(axis=1, keepdims=True))
        weight[:, [0, -1]] *= 0.5
        out[start:start + 512] = -(weight * np.sin(np.pi * (xs - eta))).sum(1) / weight.sum(1)
    return out.reshape(x.shape)


def _quad_cole_hopf(x: float, t: float, nu: float) -> float:
    """Adaptive Gauss–Kronrod (QUADPACK) in η, told where the integrand's peaks are."""
    k = 1 / (2 * math.pi * nu)
    half_width = math.sqrt(4 * nu * t * (2 * k + TAIL_EXPONENT))
    # Locate the peaks (one, or two across the shock) on a fine grid; scale to the top one.
    eta = np.linspace(-half_width, half_width, 4001)
    values = _log_integrand(x, t, eta, nu)
    top = values.max()
    inner = values[1:-1]
    peaks = eta[1:-1][(inner >= values[:-2]) & (inner >= values[2:]) & (inner > top - TAIL_EXPONENT)]

    def weight(e: float) -> float:
        return math.exp(-k * math.cos(math.pi * (x - e)) - e * e / (4 * nu * t) - top)

    options = dict(points=peaks, limit=200, full_output=1)
    den = quad(weight, -half_width, half_width, epsabs=0.0, epsrel=1e-13, **options)
    # The numerator vanishes at x = 0: ask for absolute accuracy relative to the denominator.
    num = quad(lambda e: math.sin(math.pi * (x - e)) * weight(e), -half_width, half_width,
               epsabs=1e-13 * den[0], epsrel=1e-13, **options)
    # full_output returns a 4th item (QUADPACK's message) exactly when it did not converge.
    assert len(den) == 3 and len(num) == 3, (x, t, den[-1], num[-1])
    return -num[0] / den[0]


# --- Cole–Hopf: accuracy -------------------------------------------------------------------
def test_cole_hopf_agrees_with_trapezoid_on_standard_grid():
    x, t, u = burgers_reference_grid(NU)
    assert x.shape == (256,) and t.shape == (100,) and u.shape == (100, 256)
    np.testing.assert_array_equal(x, np.linspace(-1, 1, 256))
    np.testing.assert_array_equal(t, np.linspace(0, 0.99, 100))
    xx, tt = np.meshgrid(x, t[1:])  # t = 0 is the initial condition, checked exactly below
    assert np.abs(u[1:] - _trapezoid_cole_hopf(xx, tt, NU)).max() <= QUADRATURE_AGREEMENT


def test_cole_hopf_agrees_with_adaptive_quadrature_near_the_shock():
    # 100 points anywhere and 100 in the shock (|x| ≤ 0.05, t ∈ [0.5, 0.99]), plus x = 0 and
    # the first grid column off it, where the integrand has two equal peaks.
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-1, 1, 100), rng.uniform(-0.05, 0.05, 100),
                        [0.0, 1 / 255, -1 / 255]])
    t = np.concatenate([rng.uniform(0.01, 0.99, 100), rng.uniform(0.5, 0.99, 100),
                        [0.6, 0.5, 0.99]])
    independent = np.array([_quad_cole_hopf(a, b, NU) for a, b in zip(x, t)])
    assert np.abs(burgers_cole_hopf(x, t, NU) - independent).max() <= QUADRATURE_AGREEMENT


@pytest.mark.parametrize("nu", [0.1 / math.pi, 0.05, 0.005 / math.pi],
                         ids=["nu=0.1/pi", "nu=0.05", "nu=0.005/pi"])
def test_default_nodes_reach_round_off_for_other_viscosities(nu):
    xx, tt = np.meshgrid(np.linspace(-1, 1, 65), np.linspace(0.01, 1.0, 34))
    assert np.abs(burgers_cole_hopf(xx, tt, nu) - _trapezoid_cole_hopf(xx, tt, nu)).max() \
        <= OTHER_NU_AGREEMENT


def test_too_few_nodes_for_small_viscosity_raises_instead_of_returning_garbage():
    # ν = 0.0005/π moves the integrand's peak beyond the 128 nodes; 360 nodes capture it.
    nu = 0.0005 / math.pi
    with pytest.raises(ValueError, match=r"nodes=128 is too few for nu="):
        burgers_cole_hopf(0.5, 0.9, nu)
    assert abs(burgers_cole_hopf(0.5, 0.2, nu, nodes=360) - _quad_cole_hopf(0.5, 0.2, nu)) \
        <= QUADRATURE_AGREEMENT


# --- Cole–Hopf: the PDE, initial and boundary data ------------------------------------------
def _burgers_fd_residual(x, t, h):
    """Central-difference residual u_t + u u_x − ν u_xx and the size of its largest term."""
    def u(a, b):
        return burgers_cole_hopf(a, b, NU)

    centre = u(x, t)
    u_t = (u(x, t + h) - u(x, t - h)) / (2 * h)
    u_x = (u(x + h, t) - u(x - h, t)) / (2 * h)
    u_xx = (u(x + h, t) - 2 * centre + u(x - h, t)) / h ** 2
    terms = np.stack([u_t, centre * u_x, NU * u_xx])
    return u_t + centre * u_x - NU * u_xx, np.abs(terms).max()


def _smooth_points(count=200):
    # Away from the shock at x = 0 (its width is ~ν/|u| ≈ 4e-3 at t ≥ 0.5, so |x| ≥ 0.1 is
    # smooth) and inside the domain so that x ± h, t − h stay in it.
    rng = np.random.default_rng(2)
    x = rng.uniform(0.1, 0.95, count) * rng.choice([-1.0, 1.0], count)
    return x, rng.uniform(0.05, 0.95, count)


def test_cole_hopf_satisfies_burgers_by_finite_differences():
    x, t = _smooth_points()
    residual, scale = _burgers_fd_residual(x, t, 1e-4)
    assert np.abs(residual).max() <= FD_RELATIVE_RESIDUAL * scale
    coarse, _ = _burgers_fd_residual(x, t, 2e-3)
    fine, scale = _burgers_fd_residual(x, t, 1e-3)
    assert np.abs((4 * fine - coarse) / 3).max() <= RICHARDSON_RELATIVE_RESIDUAL * scale


def test_finite_difference_residual_converges_at_second_order():
    x, t = _smooth_points()
    steps = np.array([4e-3, 2e-3, 1e-3, 5e-4])
    errors = [np.abs(_burgers_fd_residual(x, t, h)[0]).max() for h in steps]
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - 2) <= FD_ORDER_ATOL


def test_steepest_gradient_matches_basdevant():
    # u is odd in x, so the central difference at x = 0 is u(h, t)/h; h = 1e-6 keeps the
    # truncation (~8e-9 relative) and the round-off (ε/h ≈ 1e-10) below the quoted digits.
    def slope(t: float) -> float:
        h = 1e-6
        return float(burgers_cole_hopf(h, t, NU) - burgers_cole_hopf(-h, t, NU)) / (2 * h)

    best = minimize_scalar(slope, bounds=(0.4, 0.7), method="bounded", options={"xatol": 1e-8})
    assert abs(-best.fun - BASDEVANT_SLOPE) <= SLOPE_RTOL * BASDEVANT_SLOPE
    assert abs(best.x - BASDEVANT_TIME) <= PEAK_TIME_ATOL


def test_initial_and_boundary_conditions_and_odd_symmetry():
    x, t, u = burgers_reference_grid(NU)
    np.testing.assert_array_equal(u[0], -np.sin(np.pi * x))
    np.testing.assert_array_equal(burgers_cole_hopf(x, 0.0, NU), -np.sin(np.pi * x))
    times = np.linspace(0.0, 1.0, 101)
    assert np.abs(burgers_cole_hopf(1.0, times, NU)).max() <= BOUNDARY_ATOL
    assert np.abs(burgers_cole_hopf(-1.0, times, NU)).max() <= BOUNDARY_ATOL
    # Mirror x exactly (linspace(−1, 1) is symmetric only to an ulp, which u_x ≈ 150 would
    # magnify), with points close to the shock.
    xx, tt = np.meshgrid(np.concatenate([np.linspace(0, 1, 129), np.geomspace(1e-6, 1e-2, 20)]), t)
    np.testing.assert_allclose(burgers_cole_hopf(-xx, tt, NU), -burgers_cole_hopf(xx, tt, NU),
                               rtol=0, atol=SYMMETRY_ATOL)


# --- Cole–Hopf: API ------------------------------------------------------------------------
def test_broadcasting_and_shapes():
    x = np.linspace(-1, 1, 5)[:, None]
    t = np.linspace(0.1, 0.9, 3)[None, :]
    u = burgers_cole_hopf(x, t, NU)
    assert u.shape == (5, 3) and u.dtype == np.float64
    np.testing.assert_array_equal(u[:, 1], burgers_cole_hopf(x[:, 0], 0.5, NU))
    assert burgers_cole_hopf(0.25, 0.5, NU).shape == ()


def test_reference_grid_is_cached_and_read_only():
    # (Its speed is a benchmark figure, not a test: wall time is flaky under load.)
    first, second = burgers_reference_grid(NU), burgers_reference_grid(NU)
    assert all(a is b for a, b in zip(first, second))
    with pytest.raises(ValueError, match="read-only"):
        first[2][0, 0] = 1.0


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(nu=0.0), "nu must be a finite real number > 0, got 0.0"),
    (dict(nu=-0.1), "nu must be a finite real number > 0, got -0.1"),
    (dict(nu=math.nan), "nu must be a finite real number > 0, got nan"),
    (dict(nodes=0), r"nodes must be an integer in \[1, 360\], got 0"),
    (dict(nodes=361), r"nodes must be an integer in \[1, 360\], got 361"),
    (dict(nodes=100.0), r"nodes must be an integer in \[1, 360\], got 100.0"),
    (dict(t=-0.5), "t must be finite and >= 0, got -0.5"),
    (dict(x=math.inf), "x must be finite, got inf"),
], ids=["nu-zero", "nu-negative", "nu-nan", "nodes-zero", "nodes-too-many", "nodes-float",
        "t-negative", "x-infinite"])
def test_cole_hopf_rejects_bad_arguments(kwargs, message):
    arguments = dict(x=0.5, t=0.5, nu=NU) | kwargs
    positional = [arguments.pop(name) for name in ("x", "t", "nu")]
    with pytest.raises(ValueError, match=message):
        burgers_cole_hopf(*positional, **arguments)


@pytest.mark.parametrize("bad", [dict(nx=1), dict(nt=0), dict(nx=256.0)],
                         ids=["nx-one", "nt-zero", "nx-float"])
def test_reference_grid_rejects_bad_sizes(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"{name} must be an integer >= 2"):
        burgers_reference_grid.__wrapped__(NU, **bad)


# --- heat series ---------------------------------------------------------------------------
ALPHA = 0.05
COEFFICIENTS = (1.0, 0.0, 0.5, 0.0, 0.25)
MODES = [(1, 1, 1.0), (2, 3, 0.5)]
HEAT_CASES = {
    "1d-unit": (lambda x, y, t: heat_1d_series(x, t, alpha=ALPHA, coefficients=COEFFICIENTS), 1.0),
    "1d-length2": (lambda x, y, t: heat_1d_series(x, t, alpha=ALPHA, coefficients=COEFFICIENTS,
                                                  length=2.0), 2.0),
    "2d": (lambda x, y, t: heat_2d_series(x, y, t, alpha=ALPHA, modes=MODES), 1.0),
}


def _heat_fd_residual(case, x, y, t, h):
    u, _ = HEAT_CASES[case]
    u_t = (u(x, y, t + h) - u(x, y, t - h)) / (2 * h)
    laplacian = (u(x + h, y, t) - 2 * u(x, y, t) + u(x - h, y, t)) / h ** 2
    if case == "2d":
        laplacian += (u(x, y + h, t) - 2 * u(x, y, t) + u(x, y - h, t)) / h ** 2
    return u_t - ALPHA * laplacian, np.abs(u_t).max()


@pytest.mark.parametrize("case", list(HEAT_CASES))
def test_heat_series_solve_the_heat_equation_at_second_order(case):
    _, length = HEAT_CASES[case]
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0.05, 0.95, (2, 100)) * [[length], [1.0]]
    t = rng.uniform(0.05, 1.0, 100)
    steps = np.array([8e-3, 4e-3, 2e-3, 1e-3])
    errors = [np.abs(_heat_fd_residual(case, x, y, t, h)[0]).max() for h in steps]
    assert abs(np.polyfit(np.log(steps), np.log(errors), 1)[0] - 2) <= FD_ORDER_ATOL
    residual, scale = _heat_fd_residual(case, x, y, t, 1e-4)
    assert np.abs(residual).max() <= FD_RELATIVE_RESIDUAL * scale


@pytest.mark.parametrize("case", list(HEAT_CASES))
def test_heat_series_initial_and_boundary_values(case):
    u, length = HEAT_CASES[case]
    x = np.linspace(0, length, 41)
    y = np.linspace(0, 1, 41)
    if case == "2d":
        initial = sum(a * np.sin(i * np.pi * x) * np.sin(j * np.pi * y) for i, j, a in MODES)
    else:
        initial = sum(b * np.sin(k * np.pi * x / length) for k, b in enumerate(COEFFICIENTS, 1))
    np.testing.assert_allclose(u(x, y, 0.0), initial, rtol=0, atol=SERIES_ATOL)
    t = np.linspace(0, 2, 21)
    for edge in (0.0, length):
        assert np.abs(u(edge, 0.3, t)).max() <= SERIES_ATOL
    if case == "2d":
        for edge in (0.0, 1.0):
            assert np.abs(u(0.3, edge, t)).max() <= SERIES_ATOL


def test_heat_series_single_modes_have_the_closed_form():
    x, y, t = np.meshgrid(np.linspace(0, 1, 7), np.linspace(0, 1, 5), np.linspace(0, 3, 4))
    np.testing.assert_allclose(
        heat_1d_series(x, t, alpha=0.3, coefficients=[0, 0, 2.0], length=1.5),
        2.0 * np.exp(-0.3 * (3 * np.pi / 1.5) ** 2 * t) * np.sin(3 * np.pi * x / 1.5),
        rtol=1e-14, atol=SERIES_ATOL)
    # A 2D mode separates into the product of two 1D modes on the unit interval.
    np.testing.assert_allclose(
        heat_2d_series(x, y, t, alpha=0.3, modes=[(2, 3, 1.5)]),
        1.5 * heat_1d_series(x, t, alpha=0.3, coefficients=[0, 1])
        * heat_1d_series(y, t, alpha=0.3, coefficients=[0, 0, 1]),
        rtol=1e-14, atol=SERIES_ATOL)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: heat_1d_series(0.5, 0.1, alpha=0.0, coefficients=[1]), "alpha must be .* > 0, got 0.0"),
    (lambda: heat_1d_series(0.5, 0.1, alpha=1, coefficients=[1], length=-1), "length must be .* > 0"),
    (lambda: heat_1d_series(0.5, 0.1, alpha=1, coefficients=[]), "coefficients must be a non-empty"),
    (lambda: heat_1d_series(0.5, -0.1, alpha=1, coefficients=[1]), "t must be >= 0, got -0.1"),
    (lambda: heat_2d_series(0.5, 0.5, 0.1, alpha=math.inf, modes=MODES), "alpha must be .* > 0, got inf"),
    (lambda: heat_2d_series(0.5, 0.5, 0.1, alpha=1, modes=[]), "modes must hold at least one"),
    (lambda: heat_2d_series(0.5, 0.5, 0.1, alpha=1, modes=[(0, 1, 1.0)]), r"modes: got \(0, 1, 1.0\)"),
    (lambda: heat_2d_series(0.5, 0.5, 0.1, alpha=1, modes=[(1, 1)]), r"modes: got \(1, 1\)"),
    (lambda: heat_2d_series(0.5, math.nan, 0.1, alpha=1, modes=MODES), "y must be finite, got nan"),
], ids=["1d-alpha", "1d-length", "1d-empty", "1d-negative-t", "2d-alpha", "2d-empty",
        "2d-mode-zero", "2d-mode-pair", "2d-y-nan"])
def test_heat_series_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
