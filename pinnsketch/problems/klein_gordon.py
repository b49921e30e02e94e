"""Klein–Gordon: u_tt − u_xx + u³ = f on (x, t) ∈ [0, 1] × [0, 1], manufactured from
u = x cos 5πt + (x t)³ (Wang, Teng & Perdikaris 2021, "Understanding and mitigating gradient
pathologies in physics-informed neural networks": α = −1, β = 0, γ = 1, k = 3). Points are
``(x, t)``. Dirichlet data from u on x = 0, 1; initial conditions u(x, 0) = x and
u_t(x, 0) = 0 (the ``ic_t`` term). Soft constraints only: the lift that would satisfy the
conditions exactly is x cos 5πt + x t³, most of the solution itself.

    f = −25π² x cos 5πt + 6 x³ t − 6 x t³ + u³.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from pinnsketch.derivatives import gradient, partial
from pinnsketch.domain import Domain
from pinnsketch.problems.base import TERM_MEASURES, Problem
from pinnsketch.problems.conditions import time_derivative_residual

__all__ = ["KleinGordon"]


def _solution(x, t, cos):
    return x * cos(5 * math.pi * t) + (x * t) ** 3


class KleinGordon(Problem):
    """Nonlinear Klein–Gordon with a manufactured solution (a gradient-pathology benchmark:
    the pde term's gradients dwarf the conditions')."""

    input_names = ("x", "t")
    domain = Domain((0.0,), (1.0,), time=(0.0, 1.0))
    term_measures = {**TERM_MEASURES, "ic_t": "initial"}

    def physics_terms(self, hard_constraints: bool) -> tuple[str, ...]:
        return ("pde", "bc", "ic", "ic_t")

    def pde_residual(self, model, points):
        u = model(points)
        du = gradient(u, points)
        u_xx = partial(du[:, 0], points, 0)
        u_tt = partial(du[:, 1], points, 1)
        x, t = points[:, 0], points[:, 1]
        exact = _solution(x, t, torch.cos)
        forcing = (-25 * math.pi ** 2 * x * torch.cos(5 * math.pi * t) + 6 * x ** 3 * t
                   - 6 * x * t ** 3 + exact ** 3)
        return u_tt - u_xx + u ** 3 - forcing

    def boundary_value(self, points):
        return _solution(points[:, 0], points[:, 1], torch.cos)

    def initial_value(self, points):
        return points[:, 0].clone()

    def condition_residual(self, term, model, points):
        if term != "ic_t":
            return super().condition_residual(term, model, points)
        return time_derivative_residual(model, points, points.new_zeros(points.shape[0]))

    def reference(self, points: np.ndarray) -> np.ndarray:
        return _solution(points[:, 0], points[:, 1], np.cos)

    def evaluation_grid(self):
        counts = (101, 101)
        return self.domain.grid(counts).numpy(), counts
