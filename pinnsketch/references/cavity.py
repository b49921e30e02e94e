"""The steady lid-driven cavity: incompressible Navier–Stokes on the unit square [0, 1]²,
lid y = 1 moving with u = 1 (the classic discontinuous lid: u = 1 on the whole top edge,
u = 0 on the other walls, v = 0 on all of them), Reynolds number Re (lid speed and side as
units), by a streamfunction–vorticity finite-difference solver, cached.

Equations (ψ the streamfunction, ω = v_x − u_y the vorticity)::

    ∇²ψ = −ω,    u = ∂ψ/∂y,  v = −∂ψ/∂x,    u ω_x + v ω_y = (1/Re) ∇²ω,

with ψ = 0 on the walls. Scheme: second-order central differences on a uniform grid of
``cells`` × ``cells`` cells (5-point Laplacians, central first derivatives) and Thom's wall
vorticity ω_wall = −2 (ψ_1 − ψ_wall)/h² − 2 U_wall/h (Thom 1933; first order locally,
second order globally: Weinan E & J.-G. Liu, J. Comput. Phys. 124, 368–382, 1996). The steady
discrete system, ψ and ω at the interior nodes, is solved by Newton's method with a sparse
Jacobian and a sparse LU (``scipy.sparse.linalg.splu``) from the Stokes solution (Re = 0,
one linear solve), with step halving on the residual norm and, where Newton from Stokes
fails (Re ≳ 500), continuation in Re. Velocities: central differences of ψ inside, the wall
values on the walls, so the discrete divergence D_x u + D_y v is zero to round-off.

Resolution shipped: ``cells = 128`` (h = 1/128, Ghia's 129 × 129 nodes). At Re = 100, against
the Ghia tables (:data:`GHIA_RE100`), all 34 points: max |u − u_Ghia| = 4.3e-3 and
max |v − v_Ghia| = 8.4e-3 (spec 1e-2). That gap is mostly Ghia's own error: at 256 cells it
is 4.9e-3 / 9.0e-3, while our centre-line extrema converge to the spectral values of
Botella & Peyret 1998 (Comput. Fluids 27, 421): 128 cells are within 9.4e-4 of them, the
Richardson combination of 128 and 256 cells (not used here) within 2e-6. Doubling
64 → 128 → 256 changes the centre-line values by 2.9e-3, then 7.1e-4 (×4.1: second order).
Primary vortex: ψ_min = −0.103325 at the node (0.6172, 0.7344) (Ghia: −0.103423 there;
Richardson 128/256: −0.10352). A solve takes ≈ 1.7 s on one core (5 Newton steps; 256
cells ≈ 13 s); Re = 1000 at 128 cells takes ≈ 9 s, with continuation.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.interpolate import RectBivariateSpline
from scipy.sparse.linalg import splu

from pinnsketch.references.cache import cached_arrays

__all__ = ["GHIA_RE100", "CavityReference", "GhiaTable", "cavity_solution"]

SCHEME_VERSION = "psi-omega-central-thom-newton-v1"
NEWTON_TOL = 1e-10  # last Newton step on ψ and on ω, max-norm, relative to the field
NEWTON_MAX_STEPS = 12  # per Reynolds number; more means a continuation step is needed
BOUNDARY_SLACK = 1e-12  # how far outside [0, 1]² a query point may lie (round-off)


@dataclass(frozen=True)
class GhiaTable:
    """A centre-line table of Ghia et al. 1982, lid speed 1, cavity side 1.

    Attributes:
        reynolds: Re of the table.
        y: ``(17,)`` heights of the u samples on the vertical centre line x = 0.5.
        u: ``(17,)`` u(0.5, y).
        x: ``(17,)`` abscissae of the v samples on the horizontal centre line y = 0.5.
        v: ``(17,)`` v(x, 0.5).
        psi_min: the primary vortex's streamfunction; vortex_centre: its (x, y).
    """

    reynolds: float
    y: np.ndarray
    u: np.ndarray
    x: np.ndarray
    v: np.ndarray
    psi_min: float
    vortex_centre: tuple[float, float]


def _frozen(values: list[float]) -> np.ndarray:
    a = np.array(values, dtype=np.float64)
    a.flags.writeable = False
    return a


# Ghia, U., Ghia, K. N. & Shin, C. T. (1982), High-Re solutions for incompressible flow using
# the Navier–Stokes equations and a multigrid method, J. Comput. Phys. 48, 387–411:
# Table I (u on x = 0.5), Table II (v on y = 0.5), Re = 100, 129 × 129 grid (the samples are
# grid nodes j/128, rounded to 4 digits); the primary vortex from their vortex table (V).
GHIA_RE100 = GhiaTable(
    reynolds=100.0,
    y=_frozen([1.0000, 0.9766, 0.9688, 0.9609, 0.9531, 0.8516, 0.7344, 0.6172, 0.5000,
               0.4531, 0.2813, 0.1719, 0.1016, 0.0703, 0.0625, 0.0547, 0.0000]),
    u=_frozen([1.00000, 0.84123, 0.78871, 0.73722, 0.68717, 0.23151, 0.00332, -0.13641,
               -0.20581, -0.21090, -0.15662, -0.10150, -0.06434, -0.04775, -0.04192,
               -0.03717, 0.00000]),
    x=_frozen([1.0000, 0.9688, 0.9609, 0.9531, 0.9453, 0.9063, 0.8594, 0.8047, 0.5000,
               0.2344, 0.2266, 0.1563, 0.0938, 0.0781, 0.0703, 0.0625, 0.0000]),
    v=_frozen([0.00000, -0.05906, -0.07391, -0.08864, -0.10313, -0.16914, -0.22445,
               -0.24533, 0.05454, 0.17527, 0.17507, 0.16077, 0.12317, 0.10890, 0.10091,
               0.09233, 0.00000]),
    psi_min=-0.103423,
    vortex_centre=(0.6172, 0.7344),
)


def _check_reynolds(reynolds) -> None:
    if not (isinstance(reynolds, numbers.Real) and not isinstance(reynolds, bool)
            and math.isfinite(reynolds) and reynolds > 0):
        raise ValueError(f"reynolds must be a finite real number > 0, got {reynolds!r}")


def _check_cells(cells) -> None:
    if not (isinstance(cells, numbers.Integral) and not isinstance(cells, bool)
            and cells >= 16 and cells % 2 == 0):
        raise ValueError(f"cells must be an even integer >= 16, got {cells!r}")


class _Operators:
    """Sparse difference operators on the m = (cells − 1)² interior nodes, flattened
    C-order from the ``[i_x, i_y]`` interior array, with ψ = 0 on the walls built in."""

    def __init__(self, cells: int):
        n, h = cells - 1, 1.0 / cells
        eye = sp.identity(n, format="csr")
        second = sp.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(n, n)) / h ** 2
        first = sp.diags([-1.0, 1.0], [-1, 1], shape=(n, n)) / (2 * h)
        self.lap = (sp.kron(second, eye) + sp.kron(eye, second)).tocsr()
        self.dx = sp.kron(first, eye).tocsr()
        self.dy = sp.kron(eye, first).tocsr()
        i, j = np.meshgrid(np.arange(1, cells), np.arange(1, cells), indexing="ij")
        # Floats, not booleans: a node next to a corner touches two walls, and the sums
        # below must count both.
        left, right = (i == 1).ravel().astype(float), (i == n).ravel().astype(float)
        bottom, top = (j == 1).ravel().astype(float), (j == n).ravel().astype(float)
        # Thom: ω_wall = −2 ψ_adjacent/h² − 2 U_wall/h (U_wall = 1 on the lid only). The wall
        # values enter the interior stencils as these ψ-diagonals and constants.
        self.wall_lap = -2.0 / h ** 4 * (left + right + bottom + top)
        self.wall_lap_const = -2.0 / h ** 3 * top
        self.wall_dx = (left - right) / h ** 3
        self.wall_dy = (bottom - top) / h ** 3
        self.wall_dy_const = -1.0 / h ** 2 * top
        self.m = n * n


def _residual(ops: _Operators, psi: np.ndarray, omega: np.ndarray, reynolds: float):
    """The two residual blocks and the fields the Jacobian reuses."""
    u, v = ops.dy @ psi, -(ops.dx @ psi)
    omega_x = ops.dx @ omega + ops.wall_dx * psi
    omega_y = ops.dy @ omega + ops.wall_dy * psi + ops.wall_dy_const
    lap_omega = ops.lap @ omega + ops.wall_lap * psi + ops.wall_lap_const
    poisson = ops.lap @ psi + omega
    # The transport equation times Re, so that Re → 0 is the (linear) Stokes problem.
    transport = lap_omega - reynolds * (u * omega_x + v * omega_y)
    return np.concatenate([poisson, transport]), (u, v, omega_x, omega_y)


def _jacobian(ops: _Operators, fields, reynolds: float) -> sp.csc_matrix:
    u, v, omega_x, omega_y = fields
    diag = sp.diags
    d_psi = (diag(ops.wall_lap) - reynolds * (diag(omega_x) @ ops.dy - diag(omega_y) @ ops.dx
                                              + diag(u * ops.wall_dx + v * ops.wall_dy)))
    d_omega = ops.lap - reynolds * (diag(u) @ ops.dx + diag(v) @ ops.dy)
    return sp.bmat([[ops.lap, sp.identity(ops.m)], [d_psi, d_omega]], format="csc")


def _newton(ops: _Operators, z: np.ndarray, reynolds: float) -> tuple[np.ndarray, int] | None:
    """Newton's method from ``z`` (ψ then ω at the interior nodes, ``(2m,)``) at Re, with step
    halving while the residual norm does not drop: the root and the steps, or None if it
    does not converge within ``NEWTON_MAX_STEPS``."""
    m = ops.m
    residual, fields = _residual(ops, z[:m], z[m:], reynolds)
    norm = np.linalg.norm(residual)
    for step in range(1, NEWTON_MAX_STEPS + 1):
        delta = splu(_jacobian(ops, fields, reynolds)).solve(residual)
        # Converged when the step is below NEWTON_TOL relative to each field (ψ, ω): the
        # convergence is quadratic, so the error left after taking it is far smaller still.
        # (Checked before the line search, which cannot reduce a round-off-level residual.)
        if all(np.abs(d).max() <= NEWTON_TOL * max(1.0, np.abs(f).max())
               for d, f in ((delta[:m], z[:m]), (delta[m:], z[m:]))):
            return z - delta, step
        scale = 1.0
        while True:
            trial = z - scale * delta
            new_residual, new_fields = _residual(ops, trial[:m], trial[m:], reynolds)
            if np.linalg.norm(new_residual) < norm or scale < 1e-3:
                break
            scale /= 2
        z, residual, fields = trial, new_residual, new_fields
        norm = np.linalg.norm(residual)
    return None


def _steady(cells: int, reynolds: float) -> tuple[np.ndarray, int, float]:
    """Interior ψ ``(m,)`` of the steady discrete problem, total Newton steps, residual."""
    ops = _Operators(cells)
    # 1. Stokes (Re = 0): the system is linear, one Newton step from zero solves it.
    z = np.zeros(2 * ops.m)
    residual, fields = _residual(ops, z[:ops.m], z[ops.m:], 0.0)
    z -= splu(_jacobian(ops, fields, 0.0)).solve(residual)
    steps = 0
    # 2. Newton at Re from there; where it fails (Re ≳ 500 from Stokes), continuation in Re:
    #    halve the increment after a failure, double it after a success.
    done, increment = 0.0, reynolds
    while done < reynolds:
        target = min(reynolds, done + increment)
        result = _newton(ops, z, target)
        if result is None:
            increment /= 2
            if increment < 1e-3 * reynolds:
                raise RuntimeError(f"the cavity Newton iteration did not converge at "
                                   f"reynolds={target!r} on the way to {reynolds!r}, "
                                   f"cells={cells!r}")
            continue
        (z, taken), done, increment = result, target, 2 * increment
        steps += taken
    residual, _ = _residual(ops, z[:ops.m], z[ops.m:], reynolds)
    return z[:ops.m], steps, float(np.abs(residual).max())


def _solve(reynolds: float, cells: int) -> dict[str, np.ndarray]:
    """Grid fields of the steady cavity (no cache); see :func:`cavity_solution`."""
    psi_in, steps, residual = _steady(cells, reynolds)
    h, n = 1.0 / cells, cells - 1
    psi = np.zeros((cells + 1, cells + 1))
    psi[1:-1, 1:-1] = psi_in.reshape(n, n)
    u, v = np.zeros_like(psi), np.zeros_like(psi)
    u[1:-1, 1:-1] = (psi[1:-1, 2:] - psi[1:-1, :-2]) / (2 * h)
    v[1:-1, 1:-1] = -(psi[2:, 1:-1] - psi[:-2, 1:-1]) / (2 * h)
    u[:, -1] = 1.0  # the lid, corners included (the discontinuous lid of the benchmark)
    grid = np.linspace(0.0, 1.0, cells + 1)
    return {"x": grid, "y": grid.copy(), "u": u, "v": v, "psi": psi,
            "newton_steps": np.array(steps), "residual": np.array(residual)}


def cavity_solution(reynolds: float = 100.0, cells: int = 128) -> dict[str, np.ndarray]:
    """The steady lid-driven cavity on a uniform grid, from the on-disk cache when present.

    Args:
        reynolds: Re > 0 (lid speed 1, side 1); default 100.
        cells: cells per side, even, ≥ 16; default 128 (h = 1/128, see the module docstring
            for its accuracy).

    Returns:
        ``{"x": (cells+1,), "y": (cells+1,), "u", "v", "psi": (cells+1, cells+1)}`` float64,
        fields indexed ``[i_x, i_y]`` at (x[i_x], y[i_y]); also ``"newton_steps"`` (0-d int)
        and ``"residual"`` (0-d, max-norm of the discrete equations at the end).

    Raises:
        ValueError: for a non-positive or non-finite ``reynolds``, an odd or small ``cells``.
        RuntimeError: if Newton's method with continuation does not converge (not seen up
            to Re = 3200 at 128 cells).
    """
    _check_reynolds(reynolds)
    _check_cells(cells)
    reynolds, cells = float(reynolds), int(cells)
    key = {"reynolds": reynolds, "cells": cells, "scheme": SCHEME_VERSION,
           "newton_tol": NEWTON_TOL}
    return cached_arrays("cavity", key, lambda: _solve(reynolds, cells))


class CavityReference:
    """Velocity (u, v) of the steady cavity anywhere in [0, 1]², by bicubic interpolating
    splines of the grid fields of :func:`cavity_solution`.

    Near the two top corners (the lid's velocity jumps from 1 to 0) the splines ring over a
    few cells; elsewhere the interpolation error, O(h⁴), is far below the scheme's O(h²).

    Args:
        reynolds: Re > 0; default 100.
        cells: cells per side, even, ≥ 16; default 128.
    """

    def __init__(self, reynolds: float = 100.0, cells: int = 128):
        fields = cavity_solution(reynolds, cells)
        self.reynolds, self.cells = float(reynolds), int(cells)
        self._u = RectBivariateSpline(fields["x"], fields["y"], fields["u"], kx=3, ky=3, s=0)
        self._v = RectBivariateSpline(fields["x"], fields["y"], fields["v"], kx=3, ky=3, s=0)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Velocities ``(N, 2)`` float64, columns (u, v), at ``points`` ``(N, 2)`` (x, y).

        Raises:
            ValueError: unless ``points`` is a finite real array of shape (N, 2) inside
                [0, 1]² (to within 1e-12).
        """
        array = np.asarray(points)
        if array.ndim != 2 or array.shape[1] != 2:
            raise ValueError(f"points must have shape (N, 2) (columns x, y), "
                             f"got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
            raise ValueError(f"points must be real numbers, got dtype {array.dtype}")
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            bad = array[~np.isfinite(array).all(axis=1)][0]
            raise ValueError(f"points must be finite, got {bad.tolist()}")
        outside = (array < -BOUNDARY_SLACK) | (array > 1.0 + BOUNDARY_SLACK)
        if outside.any():
            bad = array[outside.any(axis=1)][0]
            raise ValueError(f"points must lie in [0, 1]² (within {BOUNDARY_SLACK:g}), "
                             f"got {bad.tolist()}")
        x, y = np.clip(array[:, 0], 0.0, 1.0), np.clip(array[:, 1], 0.0, 1.0)
        return np.stack([self._u.ev(x, y), self._v.ev(x, y)], axis=1)
