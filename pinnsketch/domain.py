"""Domains: a spatial box, optionally times a time interval, and the measures on it.

Points are rows ``(space coordinates..., t)``. The domain maps points of the unit cube onto
its three measures: the interior, the spatial boundary (× time) and the initial slice.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Domain"]


@dataclass(frozen=True)
class Domain:
    """Axis-aligned space(-time) box.

    Attributes:
        space_lows, space_highs: lower and upper corners of the spatial box, one per axis.
        time: ``(t0, t1)`` for evolution problems, ``None`` for steady ones.
    """

    space_lows: tuple[float, ...]
    space_highs: tuple[float, ...]
    time: tuple[float, float] | None = None

    def __post_init__(self):
        if len(self.space_lows) != len(self.space_highs) or not self.space_lows:
            raise ValueError("space_lows and space_highs must be non-empty and equally long")
        if any(lo >= hi for lo, hi in zip(self.space_lows, self.space_highs)):
            raise ValueError(f"each space low must be below its high, got "
                             f"{self.space_lows} and {self.space_highs}")
        if self.time is not None and self.time[0] >= self.time[1]:
            raise ValueError(f"time interval must have t0 < t1, got {self.time}")

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
        """Map unit-cube points ``(N, dim)`` affinely onto the space(-time) box."""
        lows = unit.new_tensor(self.lows)
        highs = unit.new_tensor(self.highs)
        return lows + unit * (highs - lows)

    def boundary(self, unit: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Points ``(N, dim)`` on the spatial boundary (× the time interval).

        Each point is projected onto one face, chosen with probability proportional to the
        face's measure, so the boundary is covered uniformly.
        """
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
