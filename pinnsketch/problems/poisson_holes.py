"""Poisson on a perforated plate: −Δu = f on the square [−0.5, 0.5]² minus four disks of
radius 0.1 centred at (±0.3, ±0.3) — the geometry of PINNacle's Poisson 2d-C (Hao et al.
2024) — with the manufactured solution

    u = sin(2πx) cos(2πy) + (x² + y²)/2,    f = 8π² sin(2πx) cos(2πy) − 2.

Dirichlet data u = g on the outer square; on the holes' circles either Dirichlet data too
or the flux ∂u/∂n = ∇u · n (``holes: neumann``; n the domain's outward normal, pointing into
the hole). PINNacle's own problem is Laplace's equation with u = 1 outside and 0 on the
holes and an FEM reference; this one keeps the geometry and has an exact solution. Points
are ``(x, y)``; the evaluation grid covers the square and the error is measured on its
points in the domain.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pinnsketch.derivatives import laplacian
from pinnsketch.domain import Domain
from pinnsketch.errors import ConfigError
from pinnsketch.geometry import Box, Difference, Disk, Union
from pinnsketch.problems.base import Problem
from pinnsketch.problems.conditions import neumann_residual

__all__ = ["PoissonHoles"]

HOLE_CENTRES = ((0.3, 0.3), (-0.3, 0.3), (0.3, -0.3), (-0.3, -0.3))
HOLE_RADIUS = 0.1
HOLE_CONDITIONS = ("dirichlet", "neumann")


def _plate():
    disks = [Disk(centre, HOLE_RADIUS) for centre in HOLE_CENTRES]
    holes = Union(Union(disks[0], disks[1]), Union(disks[2], disks[3]))
    return Difference(Box((-0.5, -0.5), (0.5, 0.5)), holes)


@dataclass(frozen=True)
class PoissonHolesOptions:
    """holes: the condition on the holes' circles, ``dirichlet`` or ``neumann``."""

    holes: str = "dirichlet"

    def __post_init__(self):
        if self.holes not in HOLE_CONDITIONS:
            raise ConfigError(f"problem.holes: got {self.holes!r} (allowed: "
                              f"{', '.join(HOLE_CONDITIONS)})")


class PoissonHoles(Problem):
    """−Δu = f on a square with four circular holes (manufactured solution)."""

    Options = PoissonHolesOptions
    input_names = ("x", "y")
    domain = Domain.from_shape(_plate())

    def _solution(self, x, y):
        lib = torch if isinstance(x, torch.Tensor) else np
        return lib.sin(2 * math.pi * x) * lib.cos(2 * math.pi * y) + (x * x + y * y) / 2

    def _flux(self, points: torch.Tensor) -> torch.Tensor:
        """∇u · n of the exact solution at boundary points ``(N, 2)``, ``(N,)``."""
        x, y = points[:, 0], points[:, 1]
        two_pi = 2 * math.pi
        u_x = two_pi * torch.cos(two_pi * x) * torch.cos(two_pi * y) + x
        u_y = -two_pi * torch.sin(two_pi * x) * torch.sin(two_pi * y) + y
        normal = self.domain.outward_normal(points)
        return u_x * normal[:, 0] + u_y * normal[:, 1]

    def pde_residual(self, model, points):
        x, y = points[:, 0], points[:, 1]
        source = (8 * math.pi ** 2 * torch.sin(2 * math.pi * x) * torch.cos(2 * math.pi * y)
                  - 2)
        return -laplacian(model(points), points, axes=(0, 1)) - source

    def boundary_residual(self, model, points):
        """u − g on the outer square; on the holes u − g, or ∂u/∂n − ∇u·n (``neumann``)."""
        dirichlet = model(points) - self.boundary_value(points)
        if self.options.holes == "dirichlet":
            return dirichlet
        on_hole = points.detach().abs().amax(dim=1) < 0.5 - 1e-9
        neumann = neumann_residual(model, points, self.domain.outward_normal(points),
                                   self._flux(points))
        return torch.where(on_hole, neumann, dirichlet)

    def boundary_value(self, points):
        return self._solution(points[:, 0], points[:, 1])

    def reference(self, points: np.ndarray) -> np.ndarray:
        return self._solution(points[:, 0], points[:, 1])

    def evaluation_grid(self):
        counts = (101, 101)  # of the square; the points in the holes are not measured
        return self.domain.grid(counts).numpy(), counts
