"""Korteweg–de Vries: u_t + u u_x + δ² u_xxx = 0, x ∈ [−1, 1], periodic, u(x, 0) = cos πx,
t ∈ [0, 1] (δ² = 0.0025: Zabusky & Kruskal 1965; Raissi et al. 2019, PirateNets). Points are
``(x, t)``. The cosine steepens and breaks into a train of solitons; the third derivative
makes the residual stiff in the network's high frequencies.

The reference is a Fourier ETDRK4 solution (:mod:`pinnsketch.references.kdv`), computed on
first use (about 3 s) and cached on disk; the ``bc`` term is soft periodicity.
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
from pinnsketch.references.kdv import kdv_solution

__all__ = ["KdV"]


@dataclass(frozen=True)
class KdVOptions:
    """dispersion: δ², the coefficient of u_xxx."""

    dispersion: float = 0.0025

    def __post_init__(self):
        if not (math.isfinite(self.dispersion) and self.dispersion > 0):
            raise ConfigError(f"problem.dispersion: got {self.dispersion!r}, must be a finite "
                              f"number > 0")


class KdV(Problem):
    """Periodic 1D KdV from a cosine (soliton formation)."""

    Options = KdVOptions
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
        u_xxx = partial(u_xx, points, 0)
        return du[:, 1] + u * du[:, 0] + self.options.dispersion * u_xxx

    def boundary_residual(self, model, points):
        return periodic_residual(model, points, self.domain)

    def initial_value(self, points):
        return torch.cos(math.pi * points[:, 0])

    def reference(self, points: np.ndarray) -> np.ndarray:
        if self._solution is None:
            self._solution = kdv_solution(self.options.dispersion)
        return self._solution(points[:, 0], points[:, 1])

    def evaluation_grid(self):
        # x = 1 is x = −1 by periodicity: the grid leaves it out.
        return self.domain.grid((512, 201), periodic=(0,)).numpy(), (512, 201)
