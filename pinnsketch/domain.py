"""Domains: a spatial box or shape, optionally times a time interval, and the measures on it.

Points are rows ``(space coordinates..., t)``. The domain maps points of the unit cube onto
its three measures: the interior, the spatial boundary (× time) and the initial slice. A
domain whose space is a shape of :mod:`pinnsketch.geometry` (e.g. a rectangle minus disks)
keeps its bounding box as ``space_lows``/``space_highs`` and draws by rejection.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from pinnsketch.geometry import Box, Shape

__all__ = ["Domain"]

# Distance within which a point counts as on the boundary of a shape (float64 round-off of
# the sampled boundary points is ~1e-16 on O(1) domains).
BOUNDARY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Domain:
    """Space(-time) domain: an axis-aligned box, or a shape's bounding box and the shape.

    Attributes:
        space_lows, space_highs: lower and upper corners of the spatial box, one per axis
            (with ``shape``, its bounding box).
        time: ``(t0, t1)`` for evolution problems, ``None`` for steady ones.
        shape: the spatial set when it is not the box (:meth:`from_shape`), else None.
    """

    space_lows: tuple[float, ...]
    space_highs: tuple[float, ...]
    time: tuple[float, float] | None = None
    shape: Shape | None = None

    @classmethod
    def from_shape(cls, shape: Shape, time: tuple[float, float] | None = None) -> "Domain":
        """The domain ``shape`` (× ``time``), e.g. ``Difference(Box(...), Disk(...))``."""
        lows, highs = shape.bounds
        return cls(tuple(lows), tuple(highs), time, None if isinstance(shape, Box) else shape)

    def __post_init__(self):
        if len(self.space_lows) != len(self.space_highs) or not self.space_lows:
            raise ValueError("space_lows and space_highs must be non-empty and equally long")
        if any(lo >= hi for lo, hi in zip(self.space_lows, self.space_highs)):
            raise ValueError(f"each space low must be below its high, got "
                             f"{self.space_lows} and {self.space_highs}")
        if self.time is not None and self.time[0] >= self.time[1]:
            raise ValueError(f"time interval must have t0 < t1, got {self.time}")
        if self.shape is not None and tuple(map(tuple, self.shape.bounds)) != (
                tuple(self.space_lows), tuple(self.space_highs)):
            raise ValueError(f"the box must be the shape's bounding box {self.shape.bounds}, "
                             f"got {self.space_lows} and {self.space_highs} (use "
                             f"Domain.from_shape)")

    @property
    def space_dim(self) -> int:
        return len(self.space_lows)

    @property
    def dim(self) -> int:
        """Number of input coordinates (space plus time)."""
        return self.space_dim + (self.time is not None)

    @property
    def lows(self) -> tuple[float, ...]:
        return self.space_lows + ((self.time[0],) if self.time else ())

    @property
    def highs(self) -> tuple[float, ...]:
        return self.space_highs + ((self.time[1],) if self.time else ())

    def interior(self, unit: torch.Tensor) -> torch.Tensor:
        """Map unit-cube points ``(N, dim)`` affinely onto the space(-time) box (the
        bounding box of a shape: see :meth:`sample_interior`)."""
        lows = unit.new_tensor(self.lows)
        highs = unit.new_tensor(self.highs)
        return lows + unit * (highs - lows)

    def sample_interior(self, n: int, draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
        """``n`` interior points ``(n, dim)`` from unit-cube points ``draw(m) -> (m, dim)``:
        the box maps one draw of n; a shape keeps the draws' points that fall inside it (and
        takes the times of a further draw of n)."""
        if self.shape is None:
            return self.interior(draw(n))
        space = self.shape.sample_interior(n, lambda m: draw(m)[:, :self.space_dim])
        return self._with_time(space, draw(n)) if self.time is not None else space

    def sample_initial(self, n: int, draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
        """``n`` points ``(n, dim)`` on the initial slice t = t0 (evolution problems only)."""
        if self.shape is None:
            return self.initial(draw(n))
        if self.time is None:
            raise ValueError("a steady domain has no initial slice")
        points = self.sample_interior(n, draw)
        points[:, -1] = self.time[0]
        return points

    def _with_time(self, space: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        t0, t1 = self.time
        return torch.cat([space, t0 + unit[:, -1:] * (t1 - t0)], dim=1)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Whether each point ``(N, dim)`` lies in the closed domain's space part, ``(N,)``
        bool: the box is taken as given (all True); a shape is tested."""
        if self.shape is None:
            return np.ones(len(points), dtype=bool)
        space = torch.as_tensor(np.asarray(points)[:, :self.space_dim], dtype=torch.float64)
        return (self.shape.signed_distance(space) <= BOUNDARY_TOLERANCE).numpy()

    def outward_normal(self, points: torch.Tensor) -> torch.Tensor:
        """Unit outward normals ``(N, dim)`` at spatial boundary points (zero time column):
        of the face a box point lies on (the nearest), or of the shape."""
        space = points[:, :self.space_dim]
        if self.shape is not None:
            normal = self.shape.outward_normal(space.detach().to(torch.float64))
        else:
            lows = space.new_tensor(self.space_lows)
            highs = space.new_tensor(self.space_highs)
            gaps = torch.cat([space - lows, highs - space], dim=1).abs()
            face = gaps.argmin(dim=1)
            axis, upper = face % self.space_dim, face >= self.space_dim
            normal = torch.zeros_like(space)
            normal[torch.arange(len(space)), axis] = torch.where(upper, 1.0, -1.0).to(space)
        normal = normal.to(points)
        if self.time is None:
            return normal
        return torch.cat([normal, normal.new_zeros(len(points), 1)], dim=1)

    def boundary(self, unit: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Points ``(N, dim)`` on the spatial boundary (× the time interval).

        Each point is projected onto one face, chosen with probability proportional to the
        face's measure, so the boundary is covered uniformly; a shape samples its own
        boundary uniformly in arc length (times from ``unit``'s last column).
        """
        if self.shape is not None:
            space = self.shape.sample_boundary(unit.shape[0], generator)
            return self._with_time(space, unit) if self.time is not None else space
        points = self.interior(unit)
        sides = [hi - lo for lo, hi in zip(self.space_lows, self.space_highs)]
        face_measure = []
        for axis in range(self.space_dim):
            others = [s for i, s in enumerate(sides) if i != axis]
            measure = float(torch.tensor(others).prod()) if others else 1.0
            face_measure += [measure, measure]  # low face, high face
        probabilities = torch.tensor(face_measure, dtype=torch.float64)
        faces = torch.multinomial(probabilities, unit.shape[0], replacement=True,
                                  generator=generator)
        axis, upper = faces // 2, (faces % 2).bool()
        values = torch.where(upper, points.new_tensor(self.space_highs)[axis],
                             points.new_tensor(self.space_lows)[axis])
        points[torch.arange(unit.shape[0]), axis] = values
        return points

    def initial(self, unit: torch.Tensor) -> torch.Tensor:
        """Points ``(N, dim)`` on the initial slice t = t0 (evolution problems only)."""
        if self.time is None:
            raise ValueError("a steady domain has no initial slice")
        points = self.interior(unit)
        points[:, -1] = self.time[0]
        return points

    def grid(self, counts: tuple[int, ...], periodic: tuple[int, ...] = ()) -> torch.Tensor:
        """Tensor-product grid ``(prod(counts), dim)``, last axis varying fastest; the axes
        in ``periodic`` leave out their high end (it is the low end), as a spectral
        solver's grid does."""
        axes = [torch.arange(n, dtype=torch.float64) * ((hi - lo) / n) + lo if i in periodic
                else torch.linspace(lo, hi, n, dtype=torch.float64)
                for i, (lo, hi, n) in enumerate(zip(self.lows, self.highs, counts))]
        mesh = torch.meshgrid(*axes, indexing="ij")
        return torch.stack([m.reshape(-1) for m in mesh], dim=1)
