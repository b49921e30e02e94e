"""Steady incompressible Navier–Stokes in 2-D, a system in (u, v, p):

    u u_x + v u_y + p_x − (u_xx + u_yy)/Re = 0      (momentum_x)
    u v_x + v v_y + p_y − (v_xx + v_yy)/Re = 0      (momentum_y)
    u_x + v_y = 0                                   (continuity)

Each equation is a loss term of its own. Points are ``(x, y)``; the network returns
``(N, 3)`` columns (u, v, p).

- :class:`Kovasznay`: Kovasznay's exact laminar flow behind a grid (Kovasznay 1948,
  "Laminar flow behind a two-dimensional grid", Proc. Camb. Phil. Soc. 44), Re = 20,
  on DeepXDE's domain [−0.5, 1] × [−0.5, 1.5], Dirichlet data for u, v and p on the whole
  boundary (the pressure data fix its constant).
- :class:`LidDrivenCavity`: the unit square with the lid y = 1 moving at u = 1, no-slip
  walls, Re = 100; the reference is the finite-difference solution of
  :mod:`pinnsketch.references.cavity` (checked against Ghia, Ghia & Shin 1982). The
  pressure is defined only up to a constant, so the reference gives and the error compares
  the velocities (``reference_outputs``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pinnsketch.derivatives import gradient
from pinnsketch.domain import Domain
from pinnsketch.errors import ConfigError
from pinnsketch.problems.base import Problem
from pinnsketch.references.cavity import CavityReference

__all__ = ["Kovasznay", "LidDrivenCavity", "navier_stokes_residual"]

EQUATIONS = ("momentum_x", "momentum_y", "continuity")


def navier_stokes_residual(model: torch.nn.Module, points: torch.Tensor,
                           reynolds: float) -> torch.Tensor:
    """The three steady residuals ``(N, 3)`` (momentum x, momentum y, continuity) of the
    network's (u, v, p) at ``points`` ``(N, 2)``, by exact autograd derivatives."""
    fields = model(points)
    u, v = fields[:, 0], fields[:, 1]
    du, dv, dp = (gradient(fields[:, i], points) for i in range(3))
    u_xx = gradient(du[:, 0], points)[:, 0]
    u_yy = gradient(du[:, 1], points)[:, 1]
    v_xx = gradient(dv[:, 0], points)[:, 0]
    v_yy = gradient(dv[:, 1], points)[:, 1]
    momentum_x = u * du[:, 0] + v * du[:, 1] + dp[:, 0] - (u_xx + u_yy) / reynolds
    momentum_y = u * dv[:, 0] + v * dv[:, 1] + dp[:, 1] - (v_xx + v_yy) / reynolds
    return torch.stack([momentum_x, momentum_y, du[:, 0] + dv[:, 1]], dim=1)


def _check_reynolds(value) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0):
        raise ConfigError(f"problem.reynolds: got {value!r}, must be a finite number > 0")


@dataclass(frozen=True)
class KovasznayOptions:
    """reynolds: Re (20 in Kovasznay's example, DeepXDE and PINNacle)."""

    reynolds: float = 20.0

    def __post_init__(self):
        _check_reynolds(self.reynolds)


class Kovasznay(Problem):
    """Kovasznay flow: u = 1 − e^{λx} cos 2πy, v = λ/(2π) e^{λx} sin 2πy,
    p = (1 − e^{2λx})/2 with λ = Re/2 − √(Re²/4 + 4π²)."""

    Options = KovasznayOptions
    input_names = ("x", "y")
    output_names = ("u", "v", "p")
    equations = EQUATIONS
    domain = Domain((-0.5, -0.5), (1.0, 1.5))

    @property
    def decay(self) -> float:
        """λ (negative: the wake decays downstream)."""
        re = self.options.reynolds
        return re / 2 - math.sqrt(re * re / 4 + 4 * math.pi ** 2)

    def _solution(self, x, y):
        lib = torch if isinstance(x, torch.Tensor) else np
        lam = self.decay
        wake = lib.exp(lam * x)
        return lib.stack([1 - wake * lib.cos(2 * math.pi * y),
                          lam / (2 * math.pi) * wake * lib.sin(2 * math.pi * y),
                          (1 - wake * wake) / 2], **({"dim": 1} if lib is torch else {"axis": 1}))

    def pde_residual(self, model, points):
        return navier_stokes_residual(model, points, self.options.reynolds)

    def boundary_value(self, points):
        return self._solution(points[:, 0], points[:, 1])

    def reference(self, points: np.ndarray) -> np.ndarray:
        return self._solution(points[:, 0], points[:, 1])

    def evaluation_grid(self):
        counts = (76, 101)  # spacing 0.02 in both directions
        return self.domain.grid(counts).numpy(), counts


@dataclass(frozen=True)
class CavityOptions:
    """reynolds: Re (100 in Ghia et al.'s first table); cells: the reference solver's grid
    (cells × cells)."""

    reynolds: float = 100.0
    cells: int = 128

    def __post_init__(self):
        _check_reynolds(self.reynolds)
        if not (isinstance(self.cells, int) and not isinstance(self.cells, bool)
                and self.cells >= 16 and self.cells % 2 == 0):
            raise ConfigError(f"problem.cells: got {self.cells!r}, must be an even integer "
                              f">= 16")


class LidDrivenCavity(Problem):
    """Lid-driven cavity on [0, 1]²: u = 1, v = 0 on the lid y = 1 (corners included, as
    in Ghia et al.), u = v = 0 on the other walls; no pressure data."""

    Options = CavityOptions
    input_names = ("x", "y")
    output_names = ("u", "v", "p")
    reference_outputs = ("u", "v")
    equations = EQUATIONS
    domain = Domain((0.0, 0.0), (1.0, 1.0))

    def __init__(self, options=None):
        super().__init__(options)
        self._reference: CavityReference | None = None  # solved (or read) on first use

    def pde_residual(self, model, points):
        return navier_stokes_residual(model, points, self.options.reynolds)

    def boundary_residual(self, model, points):
        """Velocity minus its wall values ``(N, 2)``; the pressure has no boundary data."""
        lid = (points[:, 1] >= self.domain.space_highs[1]).to(points.dtype)
        wall = torch.stack([lid, torch.zeros_like(lid)], dim=1)
        return model(points)[:, :2] - wall

    def boundary_value(self, points):
        lid = (points[:, 1] >= self.domain.space_highs[1]).to(points.dtype)
        return torch.stack([lid, torch.zeros_like(lid), torch.zeros_like(lid)], dim=1)

    def reference(self, points: np.ndarray) -> np.ndarray:
        if self._reference is None:
            self._reference = CavityReference(self.options.reynolds, self.options.cells)
        return self._reference(points)

    def evaluation_grid(self):
        counts = (101, 101)
        return self.domain.grid(counts).numpy(), counts
