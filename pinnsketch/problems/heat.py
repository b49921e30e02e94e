"""Heat equation u_t = α Δu with zero Dirichlet data and a multi-mode sine initial state.

- :class:`Heat1D`: x ∈ [0, 1], t ∈ [0, T]; points ``(x, t)``;
  u(x, 0) = Σ_k b_k sin(kπx) (k = 1, 2, …).
- :class:`Heat2D`: (x, y) ∈ [0, 1]², t ∈ [0, T]; points ``(x, y, t)``;
  u(x, y, 0) = Σ a sin(iπx) sin(jπy).

References are the analytic series (:mod:`pinnsketch.references.heat_series`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pinnsketch.errors import ConfigError
from pinnsketch.derivatives import gradient, partial
from pinnsketch.domain import Domain
from pinnsketch.problems.base import Problem
from pinnsketch.references.heat_series import heat_1d_series, heat_2d_series

__all__ = ["Heat1D", "Heat2D"]


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"problem.{name}: got {value!r}, must be > 0")


@dataclass(frozen=True)
class Heat1DOptions:
    """alpha: diffusivity; coefficients: b_1, b_2, … of the initial sine series;
    t_end: final time T."""

    alpha: float = 0.05
    coefficients: tuple[float, ...] = (1.0, 0.0, 0.5, 0.0, 0.25)
    t_end: float = 1.0

    def __post_init__(self):
        _check_positive("alpha", self.alpha)
        _check_positive("t_end", self.t_end)
        if not self.coefficients:
            raise ConfigError("problem.coefficients: must list at least one coefficient")


class Heat1D(Problem):
    """1D heat equation on [0, 1] × [0, T]."""

    Options = Heat1DOptions
    input_names = ("x", "t")

    def __init__(self, options=None):
        super().__init__(options)
        self.domain = Domain((0.0,), (1.0,), time=(0.0, self.options.t_end))

    def pde_residual(self, model, points):
        u = model(points)
        du = gradient(u, points)
        u_xx = partial(du[:, 0], points, 0)
        return du[:, 1] - self.options.alpha * u_xx

    def initial_value(self, points):
        x = points[:, 0]
        return sum(b * torch.sin((k + 1) * math.pi * x)
                   for k, b in enumerate(self.options.coefficients) if b != 0)

    def output_transform(self, points, raw):
        x, t = points[:, 0], points[:, 1]
        return self.initial_value(points) + t * x * (1 - x) * raw

    def reference(self, points: np.ndarray) -> np.ndarray:
        return heat_1d_series(points[:, 0], points[:, 1], alpha=self.options.alpha,
                              coefficients=self.options.coefficients)

    def evaluation_grid(self):
        counts = (101, 101)
        return self.domain.grid(counts).numpy(), counts


@dataclass(frozen=True)
class Heat2DOptions:
    """alpha: diffusivity; modes: (i, j) pairs and amplitudes: a per mode of the initial
    state Σ a sin(iπx) sin(jπy); t_end: final time T."""

    alpha: float = 0.02
    modes: tuple[tuple[int, ...], ...] = ((1, 1), (2, 3))
    amplitudes: tuple[float, ...] = (1.0, 0.5)
    t_end: float = 1.0

    def __post_init__(self):
        _check_positive("alpha", self.alpha)
        _check_positive("t_end", self.t_end)
        if len(self.modes) != len(self.amplitudes) or not self.modes:
            raise ConfigError(f"problem.amplitudes: got {len(self.amplitudes)} amplitudes for "
                              f"{len(self.modes)} modes, need one per mode (at least one)")
        for mode in self.modes:
            if len(mode) != 2 or min(mode) < 1:
                raise ConfigError(f"problem.modes: got {list(mode)}, each mode must be "
                                  f"a pair [i, j] of integers >= 1")


class Heat2D(Problem):
    """2D heat equation on [0, 1]² × [0, T]."""

    Options = Heat2DOptions
    input_names = ("x", "y", "t")

    def __init__(self, options=None):
        super().__init__(options)
        self.domain = Domain((0.0, 0.0), (1.0, 1.0), time=(0.0, self.options.t_end))

    def pde_residual(self, model, points):
        u = model(points)
        du = gradient(u, points)
        u_xx = partial(du[:, 0], points, 0)
        u_yy = partial(du[:, 1], points, 1)
        return du[:, 2] - self.options.alpha * (u_xx + u_yy)

    def initial_value(self, points):
        x, y = points[:, 0], points[:, 1]
        return sum(a * torch.sin(i * math.pi * x) * torch.sin(j * math.pi * y)
                   for (i, j), a in zip(self.options.modes, self.options.amplitudes))

    def output_transform(self, points, raw):
        x, y, t = points[:, 0], points[:, 1], points[:, 2]
        return self.initial_value(points) + t * x * (1 - x) * y * (1 - y) * raw

    def reference(self, points: np.ndarray) -> np.ndarray:
        modes = [(i, j, a) for (i, j), a in zip(self.options.modes, self.options.amplitudes)]
        return heat_2d_series(points[:, 0], points[:, 1], points[:, 2],
                              alpha=self.options.alpha, modes=modes)

    def evaluation_grid(self):
        counts = (41, 41, 11)
        return self.domain.grid(counts).numpy(), counts
