"""Allen–Cahn: u_t = ε u_xx + γ (u − u³), x ∈ [−1, 1], periodic, u(x, 0) = x² cos πx,
t ∈ [0, 1] (ε = 1e-4, γ = 5: Raissi et al. 2019, PirateNets, jaxpi). Points are ``(x, t)``.

The reference is a Fourier ETDRK4 solution (:mod:`pinnsketch.references.allen_cahn`),
computed on first use (about 6 s) and cached on disk; the ``bc`` term is soft periodicity.
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
from pinnsketch.problems.conditions import periodic_residual
from pinnsketch.references.allen_cahn import allen_cahn_solution

__all__ = ["AllenCahn"]


@dataclass(frozen=True)
class AllenCahnOptions:
    """epsilon: diffusion ε; gamma: reaction rate γ."""

    epsilon: float = 1e-4
    gamma: float = 5.0

    def __post_init__(self):
        for name in ("epsilon", "gamma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"problem.{name}: got {value!r}, must be a finite number > 0")


class AllenCahn(Problem):
    """Periodic 1D Allen–Cahn with metastable interfaces."""

    Options = AllenCahnOptions
    input_names = ("x", "t")
    domain = Domain((-1.0,), (1.0,), time=(0.0, 1.0))
    periodic_inputs = {"x": 2.0}

    def __init__(self, options=None):
        super().__init__(options)
        self._solution = None

    def pde_residual(self, model, points):
        u = model(points)
        du = gradient(u, points)
        u_xx = partial(du[:, 0], points, 0)
        o = self.options
        return du[:, 1] - o.epsilon * u_xx - o.gamma * (u - u ** 3)

    def boundary_residual(self, model, points):
        return periodic_residual(model, points, self.domain)

    def initial_value(self, points):
        x = points[:, 0]
        return x ** 2 * torch.cos(math.pi * x)

    def reference(self, points: np.ndarray) -> np.ndarray:
        if self._solution is None:
            self._solution = allen_cahn_solution(self.options.epsilon, self.options.gamma)
        return self._solution(points[:, 0], points[:, 1])

    def evaluation_grid(self):
        # x = 1 is x = −1 by periodicity: the grid leaves it out.
        return self.domain.grid((512, 201), periodic=(0,)).numpy(), (512, 201)
