"""2D Helmholtz: Δu + k² u = f on [−1, 1]², u = 0 on the boundary, with the manufactured
solution u = sin(a₁πx) sin(a₂πy) (a₁ = 1, a₂ = 4, k = 1 in PINNacle and DeepXDE), so
f = (k² − (a₁² + a₂²) π²) u. Points are ``(x, y)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pinnsketch.derivatives import laplacian
from pinnsketch.domain import Domain
from pinnsketch.errors import ConfigError
from pinnsketch.problems.base import Problem

__all__ = ["Helmholtz2D"]


@dataclass(frozen=True)
class Helmholtz2DOptions:
    """k: wave number; a1, a2: integer frequencies of the solution in x and y (integers, so
    it vanishes on the boundary)."""

    k: float = 1.0
    a1: int = 1
    a2: int = 4

    def __post_init__(self):
        if not (math.isfinite(self.k) and self.k >= 0):
            raise ConfigError(f"problem.k: got {self.k!r}, must be a finite number >= 0")
        for name in ("a1", "a2"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ConfigError(f"problem.{name}: got {value!r}, must be an integer >= 1 "
                                  f"(the solution must vanish on the boundary)")


class Helmholtz2D(Problem):
    """Δu + k²u = f on [−1, 1]² with homogeneous Dirichlet data."""

    Options = Helmholtz2DOptions
    input_names = ("x", "y")
    domain = Domain((-1.0, -1.0), (1.0, 1.0))

    def _solution(self, x, y):
        lib = torch if isinstance(x, torch.Tensor) else np
        a1, a2 = self.options.a1, self.options.a2
        return lib.sin(a1 * math.pi * x) * lib.sin(a2 * math.pi * y)

    def pde_residual(self, model, points):
        u = model(points)
        o = self.options
        x, y = points[:, 0], points[:, 1]
        source = (o.k ** 2 - (o.a1 ** 2 + o.a2 ** 2) * math.pi ** 2) * self._solution(x, y)
        return laplacian(u, points, axes=(0, 1)) + o.k ** 2 * u - source

    def output_transform(self, points, raw):
        x, y = points[:, 0], points[:, 1]
        return (1 - x * x) * (1 - y * y) * raw

    def reference(self, points: np.ndarray) -> np.ndarray:
        return self._solution(points[:, 0], points[:, 1])

    def evaluation_grid(self):
        counts = (101, 101)
        return self.domain.grid(counts).numpy(), counts
