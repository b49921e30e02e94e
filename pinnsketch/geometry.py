"""Spatial shapes and constructive solid geometry, for sampling collocation points.

Conventions:

* Points are float64 CPU tensors of shape ``(N, d)``, one row per point; every method takes
  and returns that layout (distances and masks are ``(N,)``).
* Primitives are :class:`Box` (any dimension) and :class:`Disk` (2-D); :class:`Union` and
  :class:`Difference` combine shapes of equal dimension and nest freely.
* ``signed_distance`` is negative inside, zero on the boundary, positive outside. It is exact
  for the primitives; a composite takes ``min`` (union) or ``max(a, −b)`` (difference), whose
  zero level set is the composite boundary but which, away from it, is only a bound.
* Boundary points are uniform in boundary measure (arc length in 2-D) on the *composite*
  boundary: proposals are uniform on the primitives' boundaries (each primitive in proportion
  to its measure) and a proposal is kept only where it lies on the composite boundary, so
  ``boundary_measure`` (the primitives' total) is the proposal measure, not the composite's.
* Randomness comes only from a passed ``torch.Generator`` (boundary) or a passed unit-cube
  sampler ``draw(m) -> (m, d)`` (interior); the same generator state or ``draw`` gives the
  same points.
* Boundary pieces that coincide with another shape's boundary over a set of positive measure
  (two boxes sharing a face) are degenerate: the rules keep them. Avoid such layouts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["Box", "Difference", "Disk", "Shape", "Union"]

# How far from the boundary a point may be for ``outward_normal`` (float64 round-off on O(1)
# coordinates is ~1e-16; 1e-9 leaves room for points computed by the caller).
_ON_BOUNDARY_TOL = 1e-9
# Rejection rounds before giving up: a shape with (near) zero volume inside its bounding box,
# or (near) zero composite boundary, accepts (almost) nothing.
_MAX_ROUNDS = 32
# The lowest acceptance ratio used to size a request; it caps one request at ~110× what is
# still missing, so a degenerate shape fails after bounded memory and time.
_MIN_RATIO = 1e-2


def _rejection(n: int, dim: int, propose: Callable[[int], torch.Tensor], what: str
               ) -> torch.Tensor:
    """The first ``n`` points ``(n, dim)`` kept by ``propose(m)`` (the accepted ones of m
    proposals, in proposal order, so the output is deterministic).

    The first request asks for ``n``; later ones are sized from the running acceptance ratio
    with 10 % headroom, so two rounds usually suffice.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    kept, accepted, proposed = [], 0, 0
    for _ in range(_MAX_ROUNDS):
        if accepted >= n:
            break
        ratio = max(accepted / proposed, _MIN_RATIO) if proposed else 1.0
        m = math.ceil(1.1 * (n - accepted) / ratio) + 8
        kept.append(propose(m))
        accepted, proposed = accepted + kept[-1].shape[0], proposed + m
    if accepted < n:
        raise ValueError(f"could only sample {accepted} of {n} {what} points from {proposed} "
                         f"proposals in {_MAX_ROUNDS} rounds; the shape's {what} has (near) "
                         f"zero measure relative to its proposal region")
    return torch.cat(kept)[:n] if kept else torch.empty(0, dim, dtype=torch.float64)


class Shape:
    """Abstract base of the shapes; :class:`Box`, :class:`Disk`, :class:`Union` and
    :class:`Difference` are its only (final) subclasses."""

    @property
    def dim(self) -> int:
        raise NotImplementedError

    @property
    def bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        raise NotImplementedError

    def _distance(self, points: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _gradient(self, points: torch.Tensor) -> torch.Tensor:
        """Unit gradient ``(N, d)`` of the signed distance's active branch (no checks)."""
        raise NotImplementedError

    def _primitives(self) -> tuple[Shape, ...]:
        """The primitives, in order; proposals carry an index into this tuple. A primitive
        (Box, Disk) is its own; composites override this and ``_keep``."""
        return (self,)

    def _keep(self, points: torch.Tensor, source: int) -> torch.Tensor:
        """``(N,)`` mask: proposals on primitive ``source``'s boundary that lie on this
        shape's boundary (all of them, for a primitive)."""
        return torch.ones(len(points), dtype=torch.bool)

    def signed_distance(self, points: torch.Tensor) -> torch.Tensor:
        """Signed distance ``(N,)`` of ``points`` ``(N, d)``: < 0 inside, 0 on the boundary,
        > 0 outside; exact for Box and Disk, a bound away from the boundary for composites."""
        if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != self.dim:
            shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points)
            raise ValueError(f"points must be a tensor of shape (N, {self.dim}), got {shape}")
        return self._distance(points)

    @property
    def boundary_measure(self) -> float:
        """Total boundary measure (length in 2-D) of the primitives: the proposal measure of
        :meth:`sample_boundary`, at least the composite boundary's measure."""
        return sum(p._own_measure() for p in self._primitives())

    def outward_normal(self, points: torch.Tensor) -> torch.Tensor:
        """Unit outward normals ``(N, d)`` at boundary points ``(N, d)``.

        On a Difference's removed shape the normal points into the removed shape (out of the
        domain). At a corner or junction (measure zero) either adjacent piece's normal comes.

        Raises:
            ValueError: if a point is farther than 1e-9 from the boundary.
        """
        distance = self.signed_distance(points).abs()
        far = distance > _ON_BOUNDARY_TOL
        if far.any():
            raise ValueError(f"outward_normal needs boundary points: {int(far.sum())} of "
                             f"{points.shape[0]} are farther than {_ON_BOUNDARY_TOL} from it "
                             f"(worst {float(distance.max()):.3g})")
        return self._gradient(points)

    def sample_boundary(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` points ``(n, d)``, uniform in boundary measure on the composite boundary.

        Args:
            n: number of points, ≥ 0.
            generator: CPU generator, the only source of randomness.
        """
        primitives = self._primitives()
        measures = torch.tensor([p._own_measure() for p in primitives], dtype=torch.float64)

        def propose(m: int) -> torch.Tensor:
            # 1. Pick each proposal's primitive ∝ its measure, 2. place it uniformly on that
            # primitive's boundary (rows stay in draw order, so truncation is unbiased),
            # 3. keep the proposals that lie on the composite boundary.
            source = torch.multinomial(measures, m, replacement=True, generator=generator)
            points = torch.empty(m, self.dim, dtype=torch.float64)
            keep = torch.empty(m, dtype=torch.bool)
            for k, primitive in enumerate(primitives):
                rows = source == k
                count = int(rows.sum())
                if count:
                    points[rows] = primitive._on_own_boundary(count, generator)
                    keep[rows] = self._keep(points[rows], k)
            return points[keep]

        return _rejection(n, self.dim, propose, "boundary")

    def sample_interior(self, n: int, draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
        """``n`` points ``(n, d)`` strictly inside (signed distance < 0).

        Args:
            n: number of points, ≥ 0.
            draw: ``draw(m) -> (m, d)`` points of the unit cube (uniform, Latin hypercube,
                Sobol, ...); they are mapped affinely onto the bounding box and rejected
                outside the shape; ``draw`` is called again, sized from the acceptance ratio
                so far, until ``n`` are kept, and the first ``n`` are returned.

        Raises:
            ValueError: if ``draw`` returns the wrong shape, or the shape has (near) zero
                volume in its bounding box (too few points kept in 32 rounds).
        """
        lows, highs = (torch.tensor(b, dtype=torch.float64) for b in self.bounds)

        def propose(m: int) -> torch.Tensor:
            unit = draw(m)
            if not isinstance(unit, torch.Tensor) or tuple(unit.shape) != (m, self.dim):
                got = tuple(unit.shape) if isinstance(unit, torch.Tensor) else type(unit)
                raise ValueError(f"draw({m}) must return a tensor of shape ({m}, {self.dim}), "
                                 f"got {got}")
            points = lows + unit.to(torch.float64) * (highs - lows)
            return points[self._distance(points) < 0]

        return _rejection(n, self.dim, propose, "interior")


@dataclass(frozen=True)
class Box(Shape):
    """Axis-aligned box ``[lows, highs]`` in any dimension d ≥ 1.

    Attributes:
        lows, highs: corners, one float per axis, each low < its high.
    """

    lows: tuple[float, ...]
    highs: tuple[float, ...]

    def __post_init__(self):
        lows, highs = tuple(map(float, self.lows)), tuple(map(float, self.highs))
        if not lows or len(lows) != len(highs):
            raise ValueError(f"Box lows and highs must be non-empty and of equal length, got "
                             f"lows={self.lows} and highs={self.highs}")
        if not all(math.isfinite(v) for v in lows + highs) or any(
                lo >= hi for lo, hi in zip(lows, highs)):
            raise ValueError(f"Box needs finite lows < highs on every axis, got lows={lows} "
                             f"and highs={highs}")
        object.__setattr__(self, "lows", lows)  # lists become hashable tuples of floats
        object.__setattr__(self, "highs", highs)

    @property
    def dim(self) -> int:
        return len(self.lows)

    @property
    def bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.lows, self.highs

    def _face_measures(self) -> list[float]:
        """Measures of the 2d faces, ordered (low, high) per axis; a 1-D box's faces are
        points of measure 1 (counting measure)."""
        sides = [hi - lo for lo, hi in zip(self.lows, self.highs)]
        measures = []
        for axis in range(self.dim):
            measure = math.prod(s for i, s in enumerate(sides) if i != axis)
            measures += [measure, measure]
        return measures

    def _own_measure(self) -> float:
        return sum(self._face_measures())

    def _on_own_boundary(self, m: int, generator: torch.Generator) -> torch.Tensor:
        lows = torch.tensor(self.lows, dtype=torch.float64)
        highs = torch.tensor(self.highs, dtype=torch.float64)
        measures = torch.tensor(self._face_measures(), dtype=torch.float64)
        face = torch.multinomial(measures, m, replacement=True, generator=generator)
        points = lows + torch.rand(m, self.dim, generator=generator, dtype=torch.float64) * (
            highs - lows)
        axis, upper = face // 2, (face % 2).bool()
        points[torch.arange(m), axis] = torch.where(upper, highs[axis], lows[axis])
        return points

    def _distance(self, points: torch.Tensor) -> torch.Tensor:
        lows = points.new_tensor(self.lows)
        highs = points.new_tensor(self.highs)
        # Per-axis signed distance to the slab; outside: Euclidean norm of the positive
        # parts (exact in corner regions), inside: the nearest face.
        q = torch.maximum(lows - points, points - highs)
        return q.clamp_min(0).norm(dim=1) + q.max(dim=1).values.clamp_max(0)

    def _gradient(self, points: torch.Tensor) -> torch.Tensor:
        lows = points.new_tensor(self.lows)
        highs = points.new_tensor(self.highs)
        # Face signed distances in the order (low, high) per axis; on the boundary the face
        # holding the point has the largest (zero) value.
        faces = torch.stack([lows - points, points - highs], dim=2).reshape(len(points), -1)
        face = faces.argmax(dim=1)
        normal = torch.zeros_like(points)
        normal[torch.arange(len(points)), face // 2] = torch.where(
            face % 2 == 1, 1.0, -1.0).to(points.dtype)
        return normal


@dataclass(frozen=True)
class Disk(Shape):
    """Closed disk in 2-D.

    Attributes:
        center: ``(x, y)``.
        radius: > 0.
    """

    center: tuple[float, float]
    radius: float

    def __post_init__(self):
        center = tuple(map(float, self.center))
        if len(center) != 2 or not all(map(math.isfinite, center)):
            raise ValueError(f"Disk center must be two finite floats (x, y), got {self.center}")
        if not (math.isfinite(self.radius) and self.radius > 0):
            raise ValueError(f"Disk radius must be a finite float > 0, got {self.radius}")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "radius", float(self.radius))

    @property
    def dim(self) -> int:
        return 2

    @property
    def bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        (x, y), r = self.center, self.radius
        return (x - r, y - r), (x + r, y + r)

    def _own_measure(self) -> float:
        return 2 * math.pi * self.radius

    def _on_own_boundary(self, m: int, generator: torch.Generator) -> torch.Tensor:
        angle = 2 * math.pi * torch.rand(m, generator=generator, dtype=torch.float64)
        direction = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
        return torch.tensor(self.center, dtype=torch.float64) + self.radius * direction

    def _distance(self, points: torch.Tensor) -> torch.Tensor:
        return (points - points.new_tensor(self.center)).norm(dim=1) - self.radius

    def _gradient(self, points: torch.Tensor) -> torch.Tensor:
        offset = points - points.new_tensor(self.center)
        # The centre is never on a boundary that selects this branch; the clamp only keeps
        # a stray centre point finite.
        return offset / offset.norm(dim=1, keepdim=True).clamp_min(1e-300)


@dataclass(frozen=True)
class _Pair(Shape):
    """A shape made of two of equal dimension (the CSG operations)."""

    first: Shape
    second: Shape

    def __post_init__(self):
        name = type(self).__name__
        for arg, value in (("first", self.first), ("second", self.second)):
            if not isinstance(value, Shape):
                raise TypeError(f"{name}.{arg} must be a Box, Disk, Union or Difference, "
                                f"got {type(value).__name__}")
        if self.first.dim != self.second.dim:
            raise ValueError(f"{name} needs shapes of equal dimension, got first.dim="
                             f"{self.first.dim} and second.dim={self.second.dim}")

    @property
    def dim(self) -> int:
        return self.first.dim

    def _primitives(self) -> tuple[Shape, ...]:
        return self.first._primitives() + self.second._primitives()


@dataclass(frozen=True)
class Union(_Pair):
    """``first ∪ second``; signed distance ``min(a, b)`` (a bound away from the boundary).

    Its boundary: ∂first where not strictly inside second, and ∂second where not strictly
    inside first.
    """

    @property
    def bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        (lo_a, hi_a), (lo_b, hi_b) = self.first.bounds, self.second.bounds
        return tuple(map(min, lo_a, lo_b)), tuple(map(max, hi_a, hi_b))

    def _distance(self, points: torch.Tensor) -> torch.Tensor:
        return torch.minimum(self.first._distance(points), self.second._distance(points))

    def _gradient(self, points: torch.Tensor) -> torch.Tensor:
        use_first = self.first._distance(points) <= self.second._distance(points)
        return torch.where(use_first[:, None], self.first._gradient(points),
                           self.second._gradient(points))

    def _keep(self, points: torch.Tensor, source: int) -> torch.Tensor:
        split = len(self.first._primitives())
        if source < split:
            return self.first._keep(points, source) & (self.second._distance(points) >= 0)
        return self.second._keep(points, source - split) & (self.first._distance(points) >= 0)


@dataclass(frozen=True)
class Difference(_Pair):
    """``first \\ second``; signed distance ``max(a, −b)`` (a bound away from the boundary);
    bounds are the first shape's.

    Its boundary: ∂first where not strictly inside second, and ∂second where strictly inside
    first; there the outward normal points into the removed shape.
    """

    @property
    def bounds(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.first.bounds

    def _distance(self, points: torch.Tensor) -> torch.Tensor:
        return torch.maximum(self.first._distance(points), -self.second._distance(points))

    def _gradient(self, points: torch.Tensor) -> torch.Tensor:
        use_first = self.first._distance(points) >= -self.second._distance(points)
        return torch.where(use_first[:, None], self.first._gradient(points),
                           -self.second._gradient(points))

    def _keep(self, points: torch.Tensor, source: int) -> torch.Tensor:
        split = len(self.first._primitives())
        if source < split:
            return self.first._keep(points, source) & (self.second._distance(points) >= 0)
        return self.second._keep(points, source - split) & (self.first._distance(points) < 0)
