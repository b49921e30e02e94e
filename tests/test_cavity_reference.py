"""The lid-driven cavity reference: against the Ghia et al. 1982 tables and the spectral
extrema of Botella & Peyret 1998, its own grid convergence, discrete mass conservation and
boundary values, the primary vortex, the Stokes limit, argument checks and the cache."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pinnsketch.references import cavity
from pinnsketch.references.cavity import GHIA_RE100, CavityReference, cavity_solution

SHIPPED_CELLS = 128  # the default of cavity_solution / CavityReference

# Botella, O. & Peyret, R. (1998), Benchmark spectral results on the lid-driven cavity flow,
# Comput. Fluids 27, 421–433, Re = 100 (160-mode Chebyshev; the same discontinuous lid):
# extrema on the centre lines, (value, location) with our orientation (lid moving to +x).
BOTELLA_U_MIN = (-0.2140424, 0.4581)  # min over y of u(0.5, y)
BOTELLA_V_MAX = (0.1795728, 0.2370)   # max over x of v(x, 0.5)
BOTELLA_V_MIN = (-0.2538030, 0.8104)  # min over x of v(x, 0.5)


def _centre_lines(reference: CavityReference) -> tuple[np.ndarray, np.ndarray]:
    """u at Ghia's (0.5, y) and v at Ghia's (x, 0.5), ``(17,)`` each."""
    u = reference(np.column_stack([np.full(17, 0.5), GHIA_RE100.y]))[:, 0]
    v = reference(np.column_stack([GHIA_RE100.x, np.full(17, 0.5)]))[:, 1]
    return u, v


def test_shipped_resolution_matches_ghia_re100_tables():
    assert cavity_solution.__defaults__ == (100.0, SHIPPED_CELLS)
    u, v = _centre_lines(CavityReference())
    du, dv = np.abs(u - GHIA_RE100.u).max(), np.abs(v - GHIA_RE100.v).max()
    # Ghia's values carry about 1% of the lid speed themselves (129 × 129 grid).
    assert du <= 0.01 and dv <= 0.01, f"max |u − Ghia| = {du:.2e}, max |v − Ghia| = {dv:.2e}"


def test_self_convergence_is_second_order():
    # Changes on the 34 centre-line points between 64 → 128 and 128 → 256 cells.
    values = {c: np.concatenate(_centre_lines(CavityReference(cells=c))) for c in (64, 128, 256)}
    coarse = np.abs(values[128] - values[64]).max()
    fine = np.abs(values[256] - values[128]).max()
    assert fine <= 1e-3 and coarse / fine >= 3.0, (
        f"64→128 changes by {coarse:.2e}, 128→256 by {fine:.2e} (ratio {coarse / fine:.2f})")


def test_velocity_is_discretely_divergence_free_with_exact_wall_values():
    fields = cavity_solution(100.0, SHIPPED_CELLS)
    u, v, psi = fields["u"], fields["v"], fields["psi"]
    h = 1.0 / SHIPPED_CELLS
    # 1. u = D_y ψ, v = −D_x ψ with the wall values: D_x u + D_y v vanishes to round-off.
    div = ((u[2:, 1:-1] - u[:-2, 1:-1]) + (v[1:-1, 2:] - v[1:-1, :-2])) / (2 * h)
    assert np.abs(div).max() <= 1e-9, np.abs(div).max()
    # 2. Net flux through the vertical centre line and every horizontal grid line: zero up
    #    to the O(h²) trapezoid and wall-closure error, and it shrinks ~4× per halving of h.
    def flux(f, cells):
        step = 1.0 / cells
        lines = [np.trapezoid(f["u"][cells // 2, :], dx=step)]
        lines += [np.trapezoid(f["v"][:, j], dx=step) for j in range(1, cells)]
        return np.abs(lines).max()
    fine, coarse = flux(fields, SHIPPED_CELLS), flux(cavity_solution(100.0, 64), 64)
    assert fine <= 8 * h ** 2 and coarse / fine >= 3.0, (fine, coarse)
    # 3. The boundary values are exact.
    assert np.all(u[1:-1, -1] == 1.0)                                    # the lid
    assert np.all(u[:, 0] == 0.0) and np.all(u[0, :-1] == 0.0) and np.all(u[-1, :-1] == 0.0)
    for edge in (v[0, :], v[-1, :], v[:, 0], v[:, -1], psi[0, :], psi[-1, :], psi[:, 0],
                 psi[:, -1]):
        assert np.all(edge == 0.0)
    # 4. The interpolant keeps them away from the lid's corners, and its divergence inside
    #    is O(h²): ≤ 0.03 at 128 cells, 3× smaller than at 64.
    reference = CavityReference()
    s = np.linspace(0.0, 0.9, 46)
    lid = reference(np.column_stack([s + 0.05, np.ones_like(s)]))
    walls = reference(np.concatenate([np.column_stack([np.zeros_like(s), s]),
                                      np.column_stack([np.ones_like(s), s]),
                                      np.column_stack([s + 0.05, np.zeros_like(s)])]))
    np.testing.assert_allclose(lid, np.column_stack([np.ones_like(s), 0 * s]), atol=1e-12)
    np.testing.assert_allclose(walls, 0.0, atol=1e-6)
    points = np.random.default_rng(0).uniform(0.1, 0.9, (2000, 2))

    def interpolant_divergence(ref, step=1e-5):  # central differences of the public call
        ex, ey = np.array([step, 0.0]), np.array([0.0, step])
        du_dx = (ref(points + ex)[:, 0] - ref(points - ex)[:, 0]) / (2 * step)
        dv_dy = (ref(points + ey)[:, 1] - ref(points - ey)[:, 1]) / (2 * step)
        return np.abs(du_dx + dv_dy).max()
    fine, coarse = interpolant_divergence(reference), interpolant_divergence(
        CavityReference(cells=64))
    assert fine <= 0.03 and coarse / fine >= 3.0, (fine, coarse)


def test_primary_vortex_and_centre_line_extrema():
    fields = cavity_solution()
    psi, h = fields["psi"], 1.0 / SHIPPED_CELLS
    i, j = np.unravel_index(np.argmin(psi), psi.shape)
    centre = (fields["x"][i], fields["y"][j])
    assert math.dist(centre, GHIA_RE100.vortex_centre) <= 2 * h, centre
    assert abs(psi.min() / GHIA_RE100.psi_min - 1) <= 0.01, psi.min()
    # Against spectral values: the extrema of the centre lines within 2e-3 (0.8%) of the lid
    # speed and their positions within a grid spacing (64 cells misses the values by 4e-3).
    reference = CavityReference()
    s = np.linspace(0.0, 1.0, 2001)
    u = reference(np.column_stack([np.full_like(s, 0.5), s]))[:, 0]
    v = reference(np.column_stack([s, np.full_like(s, 0.5)]))[:, 1]
    for (value, where), curve, pick in ((BOTELLA_U_MIN, u, np.argmin),
                                        (BOTELLA_V_MAX, v, np.argmax),
                                        (BOTELLA_V_MIN, v, np.argmin)):
        k = pick(curve)
        assert abs(curve[k] - value) <= 2e-3 and abs(s[k] - where) <= h, (
            value, where, curve[k], s[k])


@pytest.mark.parametrize("reynolds", [0.0, -1.0, math.nan, math.inf, True, "100"],
                         ids=["zero", "negative", "nan", "inf", "bool", "string"])
def test_bad_reynolds_is_refused(reynolds):
    with pytest.raises(ValueError, match=r"reynolds must be a finite real number > 0, got"):
        cavity_solution(reynolds)
    with pytest.raises(ValueError, match="reynolds"):
        CavityReference(reynolds)


@pytest.mark.parametrize("cells", [8, 17, 64.0, True], ids=["small", "odd", "float", "bool"])
def test_bad_cells_is_refused(cells):
    with pytest.raises(ValueError, match=rf"cells must be an even integer >= 16, got {cells!r}"):
        cavity_solution(100.0, cells)


@pytest.mark.parametrize("points, message", [
    (np.zeros(4), r"points must have shape \(N, 2\) .*got shape \(4,\)"),
    (np.zeros((3, 3)), r"points must have shape \(N, 2\) .*got shape \(3, 3\)"),
    ([["a", "b"]], r"points must be real numbers, got dtype <U1"),
    ([[0.5, np.nan]], r"points must be finite, got \[0.5, nan\]"),
    ([[0.5, 0.5], [1.1, 0.5]], r"points must lie in \[0, 1\]² \(within 1e-12\), got \[1.1, 0.5\]"),
    ([[-1e-9, 0.5]], r"points must lie in \[0, 1\]²"),
], ids=["1d", "three-columns", "strings", "nan", "outside", "just-outside"])
def test_bad_points_are_refused(points, message):
    reference = CavityReference(100.0, 16)
    with pytest.raises(ValueError, match=message):
        reference(points)


def test_points_on_the_boundary_within_round_off_are_accepted():
    reference = CavityReference(100.0, 16)
    out = reference(np.array([[-1e-13, 0.5], [0.5, 1.0 + 1e-13]]))
    assert out.shape == (2, 2) and out.dtype == np.float64
    np.testing.assert_allclose(out, [[0.0, 0.0], [1.0, 0.0]], atol=1e-9)


def test_cache_round_trip_keys_on_every_parameter(tmp_path, monkeypatch):
    monkeypatch.setenv("PINNSKETCH_CACHE", str(tmp_path))
    calls = []
    solve = cavity._solve

    def counting(reynolds, cells):
        calls.append((reynolds, cells))
        return solve(reynolds, cells)

    monkeypatch.setattr(cavity, "_solve", counting)
    first = cavity_solution(10.0, 16)
    again = cavity_solution(10.0, 16)
    assert calls == [(10.0, 16)] and len(list(tmp_path.glob("cavity-*.npz"))) == 1
    for name in ("x", "y", "u", "v", "psi"):
        assert np.array_equal(first[name], again[name])
    cavity_solution(20.0, 16)
    cavity_solution(10.0, 18)
    monkeypatch.setattr(cavity, "NEWTON_TOL", 1e-9)
    cavity_solution(10.0, 16)
    assert len(calls) == 4 and len(list(tmp_path.glob("cavity-*.npz"))) == 4


def test_small_reynolds_approaches_the_symmetric_stokes_flow():
    # The same solver's Stokes solve (Re = 0: one linear solve), which the public API refuses.
    stokes = cavity._solve(0.0, 32)
    near = {re: cavity_solution(re, 32) for re in (1e-3, 2e-3)}
    gap = {re: max(np.abs(f[k] - stokes[k]).max() for k in ("u", "v"))
           for re, f in near.items()}
    assert gap[1e-3] <= 1e-5 and abs(gap[2e-3] / gap[1e-3] - 2) <= 0.05, gap  # O(Re)
    # Stokes cavity flow is symmetric about x = 0.5; at Re = 100 it is not.
    for re, tol in ((1e-3, 1e-5), (0.0, 1e-12)):
        f = near[re] if re else stokes
        asym = max(np.abs(f["u"] - f["u"][::-1]).max(), np.abs(f["v"] + f["v"][::-1]).max())
        assert asym <= tol, (re, asym)
    f = cavity_solution(100.0, 32)
    assert np.abs(f["u"] - f["u"][::-1]).max() > 0.1
