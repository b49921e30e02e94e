"""Shapes and CSG: signed distances against hand values, boundary points on the composite
boundary and uniform in arc length (fractions from hand-computed lengths), outward normals,
interior area fractions, reproducibility and argument checks."""
from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from pinnsketch.geometry import Box, Difference, Disk, Union

# Points generated on a primitive are exact up to float64 round-off on O(1) coordinates.
ON_BOUNDARY_ATOL = 1e-12
# Largest |z| accepted for a sampled fraction: ~1e-4 two-sided for each check.
Z_MAX = 4.0

# PINNacle-like plate with four non-overlapping holes.
HOLES = [Disk((sx * 0.25, sy * 0.25), 0.1) for sx in (-1, 1) for sy in (-1, 1)]
PLATE = Difference(Box((-0.5, -0.5), (0.5, 0.5)),
                   Union(Union(HOLES[0], HOLES[1]), Union(HOLES[2], HOLES[3])))
# Unit square minus a disk that crosses its right face: half the disk is removed.
BITE = Difference(Box((0.0, 0.0), (1.0, 1.0)), Disk((1.0, 0.5), 0.25))
# Two overlapping disks of different radii.
R1, R2, D = 1.0, 0.75, 1.0
LENS = Union(Disk((0.0, 0.0), R1), Disk((D, 0.0), R2))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _uniform_draw(seed: int):
    generator, calls = _gen(seed), []

    def draw(m: int) -> torch.Tensor:
        calls.append(m)
        return torch.rand(m, 2, generator=generator, dtype=torch.float64)
    return draw, calls


def _assert_fraction(hits: torch.Tensor, p: float) -> None:
    n = hits.numel()
    z = (hits.double().mean().item() - p) / math.sqrt(p * (1 - p) / n)
    assert abs(z) < Z_MAX, f"fraction {hits.double().mean().item():.4f} vs {p:.4f}: z = {z:.2f}"


def _lens_half_angles() -> tuple[float, float]:
    """Half-angles of the arcs of each circle that lie inside the other (circle-circle
    intersection at x = (D² + R1² − R2²) / 2D)."""
    x = (D**2 + R1**2 - R2**2) / (2 * D)
    return math.acos(x / R1), math.acos((D - x) / R2)


# --- signed distance --------------------------------------------------------------------

def test_signed_distance_exact_for_primitives():
    box = Box((0.0, 0.0), (2.0, 1.0))
    points = torch.tensor([[0.5, 0.5], [1.0, 0.2], [3.0, 0.5], [3.0, 2.0], [2.0, 0.3],
                           [-1.0, -3.0], [1.0, 1.25]], dtype=torch.float64)
    expected = torch.tensor([-0.5, -0.2, 1.0, math.sqrt(2), 0.0, math.sqrt(1 + 9), 0.25],
                            dtype=torch.float64)
    torch.testing.assert_close(box.signed_distance(points), expected, rtol=0, atol=1e-15)

    disk = Disk((1.0, 1.0), 0.5)
    points = torch.tensor([[1.0, 1.0], [2.0, 1.0], [1.3, 1.4], [1.0, 1.2], [4.0, 5.0]],
                          dtype=torch.float64)
    expected = torch.tensor([-0.5, 0.5, 0.0, -0.3, 4.5], dtype=torch.float64)
    torch.testing.assert_close(disk.signed_distance(points), expected, rtol=0, atol=1e-15)

    box3 = Box((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    corner = torch.tensor([[2.0, 3.0, -2.0]], dtype=torch.float64)  # offsets (1, 2, 2)
    assert box3.signed_distance(corner).item() == pytest.approx(3.0, abs=1e-15)


def test_composite_bounds_and_measures():
    assert PLATE.bounds == ((-0.5, -0.5), (0.5, 0.5))
    assert LENS.bounds == ((-1.0, -1.0), (1.75, 1.0))
    assert PLATE.boundary_measure == pytest.approx(4.0 + 4 * 2 * math.pi * 0.1, rel=1e-15)
    assert Box((0.0, 0.0, 0.0), (1.0, 2.0, 3.0)).boundary_measure == pytest.approx(22.0)


# --- boundary points ----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [PLATE, BITE, LENS], ids=["plate", "bite", "lens"])
def test_boundary_points_on_composite_and_primitive_boundary(shape):
    points = shape.sample_boundary(4000, _gen(0))
    assert points.shape == (4000, 2) and points.dtype == torch.float64
    assert shape.signed_distance(points).abs().max() <= ON_BOUNDARY_ATOL
    primitives = shape._primitives()
    on_primitive = torch.stack([p.signed_distance(points).abs() for p in primitives]).min(0).values
    assert on_primitive.max() <= ON_BOUNDARY_ATOL


def test_union_rejects_inner_arcs():
    points = LENS.sample_boundary(4000, _gen(1))
    first, second = LENS.first.signed_distance(points), LENS.second.signed_distance(points)
    # Every point is on one circle and not strictly inside the other.
    assert (torch.minimum(first.abs(), second.abs()) <= ON_BOUNDARY_ATOL).all()
    assert (first >= -ON_BOUNDARY_ATOL).all() and (second >= -ON_BOUNDARY_ATOL).all()


def test_bite_fractions_match_arc_lengths():
    # Pieces by hand: left, bottom, top faces (1 each), the right face less the chord
    # y ∈ (0.25, 0.75) (0.5), and the half circle inside the square (π·0.25).
    lengths = {"left": 1.0, "bottom": 1.0, "top": 1.0, "right": 0.5, "arc": math.pi * 0.25}
    total = sum(lengths.values())
    points = BITE.sample_boundary(20_000, _gen(2))
    x, y = points[:, 0], points[:, 1]
    pieces = {"left": x == 0, "bottom": y == 0, "top": y == 1, "right": x == 1}
    pieces["arc"] = ~(pieces["left"] | pieces["bottom"] | pieces["top"] | pieces["right"])
    assert (pieces["right"] <= ((y <= 0.25) | (y >= 0.75))).all()
    for name, hits in pieces.items():
        _assert_fraction(hits, lengths[name] / total)


def test_lens_fractions_and_arc_uniformity():
    alpha, beta = _lens_half_angles()
    outer_first, outer_second = 2 * (math.pi - alpha) * R1, 2 * (math.pi - beta) * R2
    points = LENS.sample_boundary(20_000, _gen(3))
    on_first = (points.norm(dim=1) - R1).abs() <= ON_BOUNDARY_ATOL
    _assert_fraction(on_first, outer_first / (outer_first + outer_second))
    # The kept arc of the first circle is angles in [α, 2π − α], uniform in arc length.
    angle = torch.atan2(points[on_first, 1], points[on_first, 0]) % (2 * math.pi)
    assert angle.min() >= alpha - 1e-9 and angle.max() <= 2 * math.pi - alpha + 1e-9
    arc = stats.uniform(loc=alpha, scale=2 * math.pi - 2 * alpha)
    assert stats.kstest(angle.numpy(), arc.cdf).pvalue > 1e-3


def test_disk_angles_uniform():
    disk = Disk((0.3, -0.2), 0.7)
    points = disk.sample_boundary(20_000, _gen(4))
    angle = torch.atan2(points[:, 1] + 0.2, points[:, 0] - 0.3) % (2 * math.pi)
    counts = torch.histc(angle, bins=40, min=0, max=2 * math.pi).numpy()
    assert counts.sum() == 20_000
    assert stats.chisquare(counts).pvalue > 1e-3


def test_box_faces_weighted_by_measure_in_3d_and_1d():
    box = Box((0.0, 0.0, 0.0), (1.0, 2.0, 3.0))
    points = box.sample_boundary(20_000, _gen(5))
    # Face areas: x-faces 2·3, y-faces 1·3, z-faces 1·2; total 2·(6 + 3 + 2) = 22.
    _assert_fraction((points[:, 0] == 0) | (points[:, 0] == 1), 12 / 22)
    _assert_fraction((points[:, 1] == 0) | (points[:, 1] == 2), 6 / 22)
    _assert_fraction((points[:, 2] == 0) | (points[:, 2] == 3), 4 / 22)
    segment = Box((-1.0,), (2.0,)).sample_boundary(2000, _gen(6))
    assert set(segment[:, 0].tolist()) == {-1.0, 2.0}
    _assert_fraction(segment[:, 0] == 2.0, 0.5)


def test_boundary_reproducible():
    for shape in (PLATE, LENS, Box((0.0,) * 3, (1.0,) * 3)):
        a = shape.sample_boundary(500, _gen(7))
        assert torch.equal(a, shape.sample_boundary(500, _gen(7)))
        assert not torch.equal(a, shape.sample_boundary(500, _gen(8)))
    assert PLATE.sample_boundary(0, _gen(0)).shape == (0, 2)


# --- normals ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, junctions", [
    (PLATE, [(sx * 0.5, sy * 0.5) for sx in (-1, 1) for sy in (-1, 1)]),
    (BITE, [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (1.0, 0.25), (1.0, 0.75)]),
    (LENS, [(0.71875, s * math.sqrt(1 - 0.71875**2)) for s in (-1, 1)]),
], ids=["plate", "bite", "lens"])
def test_normals_unit_and_outward(shape, junctions):
    points = shape.sample_boundary(4000, _gen(9))
    normals = shape.outward_normal(points)
    assert (normals.norm(dim=1) - 1).abs().max() <= 1e-12
    away = torch.cdist(points, torch.tensor(junctions, dtype=torch.float64)).min(1).values > 1e-4
    assert away.float().mean() > 0.99
    h = 1e-6
    x, n = points[away], normals[away]
    assert (shape.signed_distance(x + h * n) > 0).all()
    assert (shape.signed_distance(x - h * n) < 0).all()


def test_hole_normals_point_to_hole_centre():
    points = PLATE.sample_boundary(4000, _gen(10))
    normals = PLATE.outward_normal(points)
    for hole in HOLES:
        on_hole = hole.signed_distance(points).abs() <= ON_BOUNDARY_ATOL
        assert on_hole.sum() > 50
        towards = torch.tensor(hole.center, dtype=torch.float64) - points[on_hole]
        towards = towards / towards.norm(dim=1, keepdim=True)
        assert ((normals[on_hole] * towards).sum(1) - 1).abs().max() <= 1e-12


def test_normal_rejects_points_off_the_boundary():
    with pytest.raises(ValueError, match="farther than 1e-09"):
        BITE.outward_normal(torch.tensor([[0.5, 0.5], [0.0, 0.5]], dtype=torch.float64))
    normal = Box((0.0, 0.0), (1.0, 2.0)).outward_normal(
        torch.tensor([[1.0, 0.5], [0.3, 0.0]], dtype=torch.float64))
    assert torch.equal(normal, torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64))


# --- interior -----------------------------------------------------------------------------

def test_interior_inside_and_area_fraction():
    draw, calls = _uniform_draw(11)
    points = BITE.sample_interior(20_000, draw)
    assert points.shape == (20_000, 2) and points.dtype == torch.float64
    assert (BITE.signed_distance(points) < 0).all()
    assert len(calls) <= 3  # the acceptance ratio (~0.90) sizes the second request
    # Area of the square less the half disk: 1 − π/32; the part with x > 0.5: 0.5 − π/32.
    _assert_fraction(points[:, 0] > 0.5, (0.5 - math.pi / 32) / (1 - math.pi / 32))
    plate = PLATE.sample_interior(2000, _uniform_draw(12)[0])
    assert all((h.signed_distance(plate) > 0).all() for h in HOLES)


def test_interior_reproducible_and_degenerate_shape_fails():
    a = PLATE.sample_interior(700, _uniform_draw(13)[0])
    assert torch.equal(a, PLATE.sample_interior(700, _uniform_draw(13)[0]))
    assert not torch.equal(a, PLATE.sample_interior(700, _uniform_draw(14)[0]))
    empty = Difference(Box((0.0, 0.0), (1.0, 1.0)), Box((-1.0, -1.0), (2.0, 2.0)))
    with pytest.raises(ValueError, match="zero measure"):
        empty.sample_interior(50, _uniform_draw(15)[0])
    with pytest.raises(ValueError, match="zero measure"):
        empty.sample_boundary(50, _gen(15))
    wrong = r"draw\(\d+\) must return a tensor of shape \(\d+, 2\), got \(\d+, 3\)"
    with pytest.raises(ValueError, match=wrong):
        BITE.sample_interior(10, lambda m: torch.rand(m, 3, dtype=torch.float64))


# --- validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("build, error, message", [
    (lambda: Box((0.0, 0.0), (1.0,)), ValueError, r"equal length.*lows=\(0.0, 0.0\)"),
    (lambda: Box((), ()), ValueError, "non-empty"),
    (lambda: Box((0.0, 1.0), (1.0, 1.0)), ValueError, r"lows < highs.*highs=\(1.0, 1.0\)"),
    (lambda: Disk((0.0, 0.0), 0.0), ValueError, "radius must be a finite float > 0, got 0.0"),
    (lambda: Disk((0.0, 0.0, 0.0), 1.0), ValueError, r"center must be two.*\(0.0, 0.0, 0.0\)"),
    (lambda: Union(Box((0.0,) * 3, (1.0,) * 3), Disk((0.0, 0.0), 1.0)), ValueError,
     "Union needs shapes of equal dimension, got first.dim=3 and second.dim=2"),
    (lambda: Difference(Disk((0.0, 0.0), 1.0), Box((0.0,), (1.0,))), ValueError,
     "first.dim=2 and second.dim=1"),
    (lambda: Difference(Disk((0.0, 0.0), 1.0), (0.0, 1.0)), TypeError, "second must be a Box"),
], ids=["lengths", "empty", "low-high", "radius", "center", "union-dim", "diff-dim", "type"])
def test_argument_validation(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_point_and_count_validation():
    with pytest.raises(ValueError, match=r"shape \(N, 2\), got \(5, 3\)"):
        PLATE.signed_distance(torch.zeros(5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="non-negative int, got -1"):
        PLATE.sample_boundary(-1, _gen(0))
