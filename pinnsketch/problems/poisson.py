"""2D Poisson: −Δu = f on [0, 1]², u = g on the boundary, manufactured solutions.

Points are ``(x, y)``. ``solution`` picks u*:

- ``sin``:        sin(πx) sin(πy)
- ``multiscale``: sin(πx) sin(πy) + 0.1 sin(8πx) sin(8πy)

f = −Δu* is computed analytically; both vanish on the boundary (g = 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pinnsketch.errors import ConfigError
from pinnsketch.derivatives import laplacian
from pinnsketch.domain import Domain
from pinnsketch.problems.base import Problem

__all__ = ["Poisson"]

# solution name -> list of (amplitude, frequency k): u* = Σ a sin(kπx) sin(kπy)
SOLUTIONS: dict[str, tuple[tuple[float, int], ...]] = {
    "sin": ((1.0, 1),),
    "multiscale": ((1.0, 1), (0.1, 8)),
}


@dataclass(frozen=True)
class PoissonOptions:
    """solution: manufactured solution name, one of ``SOLUTIONS``."""

    solution: str = "sin"

    def __post_init__(self):
        if self.solution not in SOLUTIONS:
            raise ConfigError(f"problem.solution: got {self.solution!r} "
                              f"(allowed: {', '.join(SOLUTIONS)})")


class Poisson(Problem):
    """−Δu = f on the unit square with homogeneous Dirichlet data."""

    Options = PoissonOptions
    input_names = ("x", "y")
    domain = Domain((0.0, 0.0), (1.0, 1.0))

    @property
    def _modes(self):
        return SOLUTIONS[self.options.solution]

    def source(self, points: torch.Tensor) -> torch.Tensor:
        """f = −Δu* = Σ a · 2(kπ)² sin(kπx) sin(kπy), shape ``(N,)``."""
        x, y = points[:, 0], points[:, 1]
        return sum(a * 2 * (k * math.pi) ** 2 * torch.sin(k * math.pi * x) * torch.sin(k * math.pi * y)
                   for a, k in self._modes)

    def pde_residual(self, model, points):
        u = model(points)
        return -laplacian(u, points, axes=(0, 1)) - self.source(points)

    def output_transform(self, points, raw):
        x, y = points[:, 0], points[:, 1]
        return x * (1 - x) * y * (1 - y) * raw

    def reference(self, points: np.ndarray) -> np.ndarray:
        x, y = points[:, 0], points[:, 1]
        return sum(a * np.sin(k * np.pi * x) * np.sin(k * np.pi * y) for a, k in self._modes)

    def evaluation_grid(self):
        counts = (101, 101)
        return self.domain.grid(counts).numpy(), counts
