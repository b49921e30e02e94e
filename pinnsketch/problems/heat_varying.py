"""2D heat with a varying conductivity (PINNacle's varying-coefficient heat family):
u_t = ∇·(a ∇u) + f on [0, 1]² × [0, 1], with

    a(x, y) = 1 + ε sin(kπx) sin(kπy)          (0 ≤ ε < 1: a > 0),
    u(x, y, t) = e^{−t} sin(πx) sin(πy)        (manufactured; u = 0 on the boundary),

so f = u_t − a Δu − ∇a·∇u = (2π² a − 1) u − ∇a·∇u, in closed form. The conductivity varies
k times faster than the solution. Points are ``(x, y, t)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pinnsketch.derivatives import gradient, partial
from pinnsketch.domain import Domain
from pinnsketch.errors import ConfigError
from pinnsketch.problems.base import Problem

__all__ = ["HeatVarying"]


@dataclass(frozen=True)
class HeatVaryingOptions:
    """epsilon: amplitude ε of the conductivity's variation (0 ≤ ε < 1); k: its frequency."""

    epsilon: float = 0.5
    k: int = 4

    def __post_init__(self):
        if not (math.isfinite(self.epsilon) and 0 <= self.epsilon < 1):
            raise ConfigError(f"problem.epsilon: got {self.epsilon!r}, must be in [0, 1) "
                              f"(the conductivity 1 + ε sin sin must stay positive)")
        if not (isinstance(self.k, int) and not isinstance(self.k, bool) and self.k >= 1):
            raise ConfigError(f"problem.k: got {self.k!r}, must be an integer >= 1")


class HeatVarying(Problem):
    """u_t = ∇·(a(x, y) ∇u) + f with the manufactured solution of the module docstring."""

    Options = HeatVaryingOptions
    input_names = ("x", "y", "t")
    domain = Domain((0.0, 0.0), (1.0, 1.0), time=(0.0, 1.0))

    def conductivity(self, x, y):
        """a(x, y) and its two partial derivatives (torch or numpy arrays)."""
        lib = torch if isinstance(x, torch.Tensor) else np
        eps, w = self.options.epsilon, self.options.k * math.pi
        a = 1 + eps * lib.sin(w * x) * lib.sin(w * y)
        return (a, eps * w * lib.cos(w * x) * lib.sin(w * y),
                eps * w * lib.sin(w * x) * lib.cos(w * y))

    def _solution(self, x, y, t):
        lib = torch if isinstance(x, torch.Tensor) else np
        return lib.exp(-t) * lib.sin(math.pi * x) * lib.sin(math.pi * y)

    def source(self, x, y, t):
        """f = (2π² a − 1) u − a_x u_x − a_y u_y at the manufactured u."""
        lib = torch if isinstance(x, torch.Tensor) else np
        a, a_x, a_y = self.conductivity(x, y)
        u = self._solution(x, y, t)
        decay = lib.exp(-t) * math.pi
        u_x = decay * lib.cos(math.pi * x) * lib.sin(math.pi * y)
        u_y = decay * lib.sin(math.pi * x) * lib.cos(math.pi * y)
        return (2 * math.pi ** 2 * a - 1) * u - a_x * u_x - a_y * u_y

    def pde_residual(self, model, points):
        u = model(points)
        du = gradient(u, points)
        x, y, t = points[:, 0], points[:, 1], points[:, 2]
        a, a_x, a_y = self.conductivity(x, y)
        divergence = (a * (partial(du[:, 0], points, 0) + partial(du[:, 1], points, 1))
                      + a_x * du[:, 0] + a_y * du[:, 1])
        return du[:, 2] - divergence - self.source(x, y, t)

    def initial_value(self, points):
        return self._solution(points[:, 0], points[:, 1], torch.zeros_like(points[:, 0]))

    def output_transform(self, points, raw):
        x, y, t = points[:, 0], points[:, 1], points[:, 2]
        return self.initial_value(points) + t * x * (1 - x) * y * (1 - y) * raw

    def reference(self, points: np.ndarray) -> np.ndarray:
        return self._solution(points[:, 0], points[:, 1], points[:, 2])

    def evaluation_grid(self):
        counts = (41, 41, 11)
        return self.domain.grid(counts).numpy(), counts
