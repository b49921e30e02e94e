"""The 1D evolution problems of the PINN failure-mode studies (Krishnapriyan et al. 2021;
Rathore et al. 2024), each with its exact solution (reaction–diffusion: a computed one). Points are ``(x, t)``, t ∈ [0, 1].

- :class:`Convection`: u_t + β u_x = 0 on x ∈ [0, 2π), periodic, u₀ = sin x;
  u = sin(x − βt).
- :class:`Reaction`: u_t = ρ u (1 − u) on x ∈ [0, 2π), periodic, u₀ = exp(−(x − π)² /
  (2 (π/4)²)) (Krishnapriyan et al.'s Gaussian); u = u₀ e^{ρt} / (u₀ e^{ρt} + 1 − u₀).
- :class:`ReactionDiffusion`: u_t = ν u_xx + ρ u (1 − u), same domain and u₀ as reaction;
  reference by Strang splitting of the exact flows
  (:mod:`pinnsketch.references.reaction_diffusion`).
- :class:`Wave`: u_tt = c² u_xx on x ∈ [0, 1], u(0, t) = u(1, t) = 0,
  u₀ = sin πx + ½ sin βπx, u_t(x, 0) = 0 (term ``ic_t``);
  u = sin πx cos cπt + ½ sin βπx cos βcπt.

The periodic problems' ``bc`` term is soft periodicity in x
(:func:`~pinnsketch.problems.conditions.periodic_residual`): values and slopes at both ends
for convection, values only for reaction (whose Gaussian u₀ is not periodic in slope).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pinnsketch.derivatives import gradient, partial
from pinnsketch.domain import Domain
from pinnsketch.errors import ConfigError
from pinnsketch.problems.base import TERM_MEASURES, Problem
from pinnsketch.problems.conditions import periodic_residual, time_derivative_residual
from pinnsketch.references.reaction_diffusion import reaction_diffusion_solution

__all__ = ["Convection", "Reaction", "ReactionDiffusion", "Wave"]

_PERIODIC = Domain((0.0,), (2 * math.pi,), time=(0.0, 1.0))


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"problem.{name}: got {value!r}, must be a finite number > 0")


def _grid(domain: Domain, counts=(256, 101)) -> tuple[np.ndarray, tuple[int, int]]:
    return domain.grid(counts).numpy(), counts


@dataclass(frozen=True)
class ConvectionOptions:
    """beta: wave speed β (Rathore et al. use 40; failures set in above about 10)."""

    beta: float = 40.0

    def __post_init__(self):
        _positive("beta", self.beta)


class Convection(Problem):
    """Periodic 1D convection u_t + β u_x = 0, u₀ = sin x."""

    Options = ConvectionOptions
    input_names = ("x", "t")
    domain = _PERIODIC
    periodic_inputs = {"x": 2 * math.pi}

    def pde_residual(self, model, points):
        du = gradient(model(points), points)
        return du[:, 1] + self.options.beta * du[:, 0]

    def boundary_residual(self, model, points):
        return periodic_residual(model, points, self.domain)

    def initial_value(self, points):
        return torch.sin(points[:, 0])

    def reference(self, points: np.ndarray) -> np.ndarray:
        return np.sin(points[:, 0] - self.options.beta * points[:, 1])

    def evaluation_grid(self):
        return _grid(self.domain)


@dataclass(frozen=True)
class ReactionOptions:
    """rho: reaction rate ρ (Krishnapriyan et al. and Rathore et al. use 5)."""

    rho: float = 5.0

    def __post_init__(self):
        _positive("rho", self.rho)


def _gaussian(x):
    lib = torch if isinstance(x, torch.Tensor) else np
    return lib.exp(-((x - math.pi) ** 2) / (2 * (math.pi / 4) ** 2))


class Reaction(Problem):
    """Periodic 1D logistic reaction u_t = ρ u (1 − u), Gaussian u₀."""

    Options = ReactionOptions
    input_names = ("x", "t")
    domain = _PERIODIC
    periodic_inputs = {"x": 2 * math.pi}

    def pde_residual(self, model, points):
        u = model(points)
        return partial(u, points, 1) - self.options.rho * u * (1 - u)

    def boundary_residual(self, model, points):
        # Values only: the Gaussian's slopes at 0 and 2π differ (±1.7e-3, growing with
        # e^{ρt}), so the exact solution is periodic in value but not in slope.
        return periodic_residual(model, points, self.domain, slopes=False)

    def initial_value(self, points):
        return _gaussian(points[:, 0])

    def reference(self, points: np.ndarray) -> np.ndarray:
        u0 = _gaussian(points[:, 0])
        growth = np.exp(self.options.rho * points[:, 1])
        return u0 * growth / (u0 * growth + 1 - u0)

    def evaluation_grid(self):
        return _grid(self.domain)


@dataclass(frozen=True)
class ReactionDiffusionOptions:
    """nu: diffusion ν; rho: reaction rate ρ (Krishnapriyan et al. 2021 vary both; 5 and 5
    here)."""

    nu: float = 5.0
    rho: float = 5.0

    def __post_init__(self):
        _positive("nu", self.nu)
        _positive("rho", self.rho)


class ReactionDiffusion(Problem):
    """Periodic 1D reaction–diffusion u_t = ν u_xx + ρ u (1 − u), Gaussian u₀."""

    Options = ReactionDiffusionOptions
    input_names = ("x", "t")
    domain = _PERIODIC
    periodic_inputs = {"x": 2 * math.pi}

    def __init__(self, options=None):
        super().__init__(options)
        self._solution = None

    def pde_residual(self, model, points):
        u = model(points)
        du = gradient(u, points)
        u_xx = partial(du[:, 0], points, 0)
        return du[:, 1] - self.options.nu * u_xx - self.options.rho * u * (1 - u)

    def boundary_residual(self, model, points):
        # Diffusion makes the solution smooth across x = 0 ≡ 2π: values and slopes.
        return periodic_residual(model, points, self.domain)

    def initial_value(self, points):
        return _gaussian(points[:, 0])

    def reference(self, points: np.ndarray) -> np.ndarray:
        if self._solution is None:
            self._solution = reaction_diffusion_solution(_gaussian, "gaussian",
                                                         self.options.nu, self.options.rho)
        return self._solution(points[:, 0], points[:, 1])

    def evaluation_grid(self):
        # 2π is 0 by periodicity: the grid leaves it out.
        return self.domain.grid((256, 101), periodic=(0,)).numpy(), (256, 101)


@dataclass(frozen=True)
class WaveOptions:
    """c: wave speed; beta: frequency of the second initial mode (Rathore et al.: c = 2,
    β = 5)."""

    c: float = 2.0
    beta: float = 5.0

    def __post_init__(self):
        _positive("c", self.c)
        _positive("beta", self.beta)


class Wave(Problem):
    """1D wave u_tt = c² u_xx on [0, 1], fixed ends, released from rest."""

    Options = WaveOptions
    input_names = ("x", "t")
    domain = Domain((0.0,), (1.0,), time=(0.0, 1.0))
    term_measures = {**TERM_MEASURES, "ic_t": "initial"}

    def physics_terms(self, hard_constraints: bool) -> tuple[str, ...]:
        return ("pde", "ic_t") if hard_constraints else ("pde", "bc", "ic", "ic_t")

    def pde_residual(self, model, points):
        du = gradient(model(points), points)
        u_xx = partial(du[:, 0], points, 0)
        u_tt = partial(du[:, 1], points, 1)
        return u_tt - self.options.c ** 2 * u_xx

    def initial_value(self, points):
        x = points[:, 0]
        return torch.sin(math.pi * x) + 0.5 * torch.sin(self.options.beta * math.pi * x)

    def condition_residual(self, term, model, points):
        if term != "ic_t":
            return super().condition_residual(term, model, points)
        return time_derivative_residual(model, points, points.new_zeros(points.shape[0]))

    def output_transform(self, points, raw):
        # u₀ + t·x(1−x)·N: the ends stay fixed and u(x, 0) = u₀; u_t(x, 0) stays a soft term.
        x, t = points[:, 0], points[:, 1]
        return self.initial_value(points) + t * x * (1 - x) * raw

    def reference(self, points: np.ndarray) -> np.ndarray:
        x, t = points[:, 0], points[:, 1]
        c, beta = self.options.c, self.options.beta
        return (np.sin(np.pi * x) * np.cos(c * np.pi * t)
                + 0.5 * np.sin(beta * np.pi * x) * np.cos(beta * c * np.pi * t))

    def evaluation_grid(self):
        return _grid(self.domain, (101, 101))
