"""Cole–Hopf reference solution of viscous Burgers, evaluated by Gauss–Hermite quadrature.

For u_t + u u_x = ν u_xx with u(x, 0) = −sin(πx) (Basdevant et al. 1986, Comput. Fluids 14):

    u(x, t) = −∫ sin(π(x−η)) f(x−η) e^{−η²/4νt} dη / ∫ f(x−η) e^{−η²/4νt} dη,
    f(y) = exp(−cos(πy) / (2πν)).

The formula solves the 2-periodic problem on the real line; the initial state is odd about
x = 0 and about x = ±1, so the solution stays odd there and u(±1, t) = 0: restricted to
[−1, 1] it is the Dirichlet problem of the PINN benchmark.
"""
from __future__ import annotations

import functools
import numbers

import numpy as np

from pinnsketch.references.arguments import check_positive

__all__ = ["burgers_cole_hopf", "burgers_reference_grid"]

# Gauss–Hermite nodes. Plain GH (the Gaussian centred at η = 0, no shift to the Laplace peak)
# converges fast enough: on x ∈ [−1, 1], t ∈ (0, 1], against a 2·10⁴-point trapezoid rule,
# the max error is 2e-10 at 64 nodes, 3e-15 at 100 and 2e-15 (round-off) from 128 on, for
# ν = 0.01/π. 128 also reaches round-off for 0.005/π ≤ ν ≤ 0.1/π (ν = 1/π: 7e-10; pass 256).
NODES = 128
# numpy's hermgauss overflows from 371 nodes on (its weights fall below 1e-300).
MAX_NODES = 360
# A rule whose outermost node carries more than this share of the weight has not captured the
# integrand's mass (small ν moves the peak beyond the nodes); see step 4 of burgers_cole_hopf.
_TAIL_SHARE = 1e-12
# Points per vectorised block: bounds memory at 8192 × nodes float64 (8 MiB at 128 nodes)
# per temporary; the 256 × 100 grid is ~4 blocks. Timed flat from 512 to 32768 points.
_CHUNK_POINTS = 8192


@functools.lru_cache(maxsize=8)
def _hermite_rule(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z_j and log-weights log w_j of the ``nodes``-point Gauss–Hermite rule (read-only)."""
    z, w = np.polynomial.hermite.hermgauss(nodes)
    log_w = np.log(w)
    z.flags.writeable = False
    log_w.flags.writeable = False
    return z, log_w


def burgers_cole_hopf(x: np.ndarray, t: np.ndarray, nu: float, *, nodes: int = NODES) -> np.ndarray:
    """Viscous Burgers solution u(x, t) for u(x, 0) = −sin(πx), by the Cole–Hopf formula.

    Steps (per point, vectorised over points in blocks of ``_CHUNK_POINTS``):
      1. Substitute η = √(4νt)·z: both integrals become ∫ g(z) e^{−z²} dz, evaluated as
         Σ_j w_j g(z_j) with the ``nodes``-point Gauss–Hermite rule (numpy ``hermgauss``).
      2. The log-integrand −cos(π(x−η_j))/(2πν) + log w_j spans about ±1/(2πν) = ±50 for
         ν = 0.01/π; subtract its maximum over j before exponentiating. The common factor
         cancels in the ratio, so nothing overflows and the peak weight is exactly 1.
      3. u = −Σ_j p_j sin(π(x−η_j)) / Σ_j p_j with the scaled weights p_j of step 2.
      4. Check the rule captured the mass: if the outermost node's share of Σ_j p_j exceeds
         1e-12 (the peak of the integrand sits beyond the nodes, which happens for small ν),
         raise instead of returning a wrong value.
      5. t = 0 returns the initial condition −sin(πx) exactly.

    Plain GH, centred at η = 0, is the chosen rule: the integrand's peaks (at the feet of the
    characteristics, |z| up to about 9 near the shock for ν = 0.01/π) lie well inside the
    128 nodes (|z| ≤ 15.2), and the rule converges to round-off there (see ``NODES``); on the
    standard 256 × 100 grid it agrees with independent quadrature to about 2e-15 and takes
    about 0.1 s.

    Args:
        x: positions, any shape broadcastable with ``t``; finite. Outside [−1, 1] the value is
            that of the 2-periodic extension.
        t: times ≥ 0, broadcastable with ``x``.
        nu: viscosity ν > 0 (the benchmark uses 0.01/π).
        nodes: Gauss–Hermite nodes, 1 ≤ nodes ≤ 360 (default 128: round-off accuracy for
            0.005/π ≤ ν ≤ 0.1/π, t ≤ 1).

    Returns:
        float64 array of the broadcast shape of ``x`` and ``t``.

    Raises:
        ValueError: for nu ≤ 0 or non-finite, nodes outside [1, 360], non-finite x or t,
            t < 0, or when step 4 finds ``nodes`` too few for this ν (pass more nodes).
    """
    check_positive("nu", nu)
    if isinstance(nodes, bool) or not isinstance(nodes, numbers.Integral) or not 1 <= nodes <= MAX_NODES:
        raise ValueError(f"nodes must be an integer in [1, {MAX_NODES}], got {nodes!r}")
    x, t = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64))
    if not np.isfinite(x).all():
        raise ValueError(f"x must be finite, got {float(x[~np.isfinite(x)].ravel()[0])!r}")
    if not (np.isfinite(t).all() and (t >= 0).all()):
        raise ValueError(f"t must be finite and >= 0, got {float(t[~(np.isfinite(t) & (t >= 0))].ravel()[0])!r}")
    z, log_w = _hermite_rule(int(nodes))
    flat_x, flat_t = x.ravel(), t.ravel()
    u = np.empty(flat_x.shape)
    for start in range(0, flat_x.size, _CHUNK_POINTS):
        block = slice(start, start + _CHUNK_POINTS)
        u[block] = _gauss_hermite_ratio(flat_x[block], flat_t[block], float(nu), z, log_w)
    # Step 5: the quadrature gives −sin(πx) only up to round-off at t = 0; make it exact.
    initial = flat_t == 0
    u[initial] = -np.sin(np.pi * flat_x[initial])
    return u.reshape(x.shape)


def _gauss_hermite_ratio(x: np.ndarray, t: np.ndarray, nu: float, z: np.ndarray,
                         log_w: np.ndarray) -> np.ndarray:
    """Steps 1–4 of :func:`burgers_cole_hopf` for one block: x, t (P,) → u (P,)."""
    # Step 1: the shifted arguments ξ_j = x − √(4νt) z_j, shape (P, nodes).
    xi = x[:, None] - np.sqrt(4.0 * nu * t)[:, None] * z
    angle = np.pi * xi
    # Step 2: log-sum-exp scaling of the log-integrand.
    exponent = log_w - np.cos(angle) / (2.0 * np.pi * nu)
    exponent -= exponent.max(axis=1, keepdims=True)
    weight = np.exp(exponent)
    total = weight.sum(axis=1)
    # Step 4: the mass must sit inside the nodes.
    tail = np.maximum(weight[:, 0], weight[:, -1]) / total
    if (tail > _TAIL_SHARE).any():
        worst = int(tail.argmax())
        raise ValueError(
            f"nodes={z.size} is too few for nu={nu!r}: at x={x[worst]!r}, t={t[worst]!r} the "
            f"outermost Gauss-Hermite node carries {tail[worst]:.1e} of the weight (allowed "
            f"<= {_TAIL_SHARE:g}); pass more nodes (at most {MAX_NODES})")
    # Step 3: the ratio of the two sums.
    return -(weight * np.sin(angle)).sum(axis=1) / total


@functools.lru_cache(maxsize=8)
def burgers_reference_grid(nu: float, nx: int = 256, nt: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Cole–Hopf solution on the standard benchmark grid, cached and read-only.

    The grid is x = linspace(−1, 1, nx), t = linspace(0, 0.99, nt) (256 × 100 is the grid of
    the Burgers data of Raissi et al. 2019). Evaluated once per (nu, nx, nt) with the default
    ``NODES``; the returned arrays are shared between callers and not writeable.

    Args:
        nu: viscosity ν > 0.
        nx: number of x points, ≥ 2.
        nt: number of t points, ≥ 2.

    Returns:
        ``(x, t, u)``: x of shape (nx,), t of shape (nt,), u of shape (nt, nx) with
        u[i, j] = u(x[j], t[i]); all float64.

    Raises:
        ValueError: for nx or nt not an integer ≥ 2, or a bad nu (see :func:`burgers_cole_hopf`).
    """
    for name, count in (("nx", nx), ("nt", nt)):
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {count!r}")
    x = np.linspace(-1.0, 1.0, nx)
    t = np.linspace(0.0, 0.99, nt)
    u = burgers_cole_hopf(x[None, :], t[:, None], nu)
    for array in (x, t, u):
        array.flags.writeable = False
    return x, t, u
