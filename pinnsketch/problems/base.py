"""The problem protocol: what a PDE definition provides to the trainer.

A problem names its loss terms and returns a **dict of residuals per term** (never one
loss), so the monitor can tell the terms apart. Built-in terms:

- ``pde``: 𝒩[u](z) − f(z) at interior points,
- ``bc``:  u(z) − g(z) on the spatial boundary,
- ``ic``:  u(z) − u₀(z) on the initial slice (evolution problems),
- ``data``: u(z) − u_obs at observation points; its batch rows are ``(z..., u_obs)``.

With hard constraints the output transform satisfies ``bc`` and ``ic`` exactly and those
terms are dropped.
"""
from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np
import torch

from pinnsketch.config import ObservationConfig, SamplingConfig
from pinnsketch.domain import Domain
from pinnsketch.sampling import Sampler

__all__ = ["Problem", "make_observations"]


class Problem(abc.ABC):
    """Base class of every PDE problem (built-in or user-defined).

    Subclasses set ``Options`` (a frozen dataclass of their YAML options, all with
    defaults), ``input_names`` (column order of points, e.g. ``("x", "t")``) and ``domain``,
    and implement :meth:`pde_residual`, :meth:`reference` and :meth:`evaluation_grid`.
    Problems with Dirichlet data override :meth:`boundary_value`/:meth:`initial_value`.
    """

    Options: ClassVar[type]
    input_names: ClassVar[tuple[str, ...]]
    domain: Domain

    def __init__(self, options=None):
        self.options = self.Options() if options is None else options

    # -- terms ----------------------------------------------------------------------------
    def physics_terms(self, hard_constraints: bool) -> tuple[str, ...]:
        """Names of the physics loss terms, in a fixed order."""
        if hard_constraints:
            return ("pde",)
        return ("pde", "bc", "ic") if self.domain.time is not None else ("pde", "bc")

    def collocation(self, sampler: Sampler, sampling: SamplingConfig,
                    terms: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """Fresh float64 point sets ``(N_term, d)`` for the physics terms among ``terms``."""
        draw = {"pde": lambda: sampler.interior(sampling.interior),
                "bc": lambda: sampler.boundary(sampling.boundary),
                "ic": lambda: sampler.initial(sampling.initial)}
        return {term: draw[term]() for term in terms if term in draw}

    def residuals(self, model: torch.nn.Module,
                  batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Residual ``(N_term,)`` of each term in ``batch`` (same keys, same order)."""
        out = {}
        for term, points in batch.items():
            if term == "pde":
                out[term] = self.pde_residual(model, points)
            elif term == "bc":
                out[term] = model(points) - self.boundary_value(points)
            elif term == "ic":
                out[term] = model(points) - self.initial_value(points)
            elif term == "data":
                out[term] = model(points[:, :-1]) - points[:, -1]
            else:
                raise KeyError(f"problem {type(self).__name__} has no term {term!r}")
        return out

    # -- the PDE ----------------------------------------------------------------------------
    @abc.abstractmethod
    def pde_residual(self, model: torch.nn.Module, points: torch.Tensor) -> torch.Tensor:
        """𝒩[u](z) − f(z) at interior points ``(N, d)`` with exact autograd derivatives."""

    def boundary_value(self, points: torch.Tensor) -> torch.Tensor:
        """Dirichlet data g on the boundary, ``(N,)``; zero unless overridden."""
        return points.new_zeros(points.shape[0])

    def initial_value(self, points: torch.Tensor) -> torch.Tensor:
        """Initial data u₀ on the initial slice, ``(N,)``."""
        raise NotImplementedError(f"{type(self).__name__} defines no initial condition")

    def output_transform(self, points: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """Map the raw network output to one satisfying the BC/IC exactly."""
        raise NotImplementedError(f"{type(self).__name__} has no hard-constraint transform")

    @property
    def has_output_transform(self) -> bool:
        return type(self).output_transform is not Problem.output_transform

    def parameters(self) -> tuple[torch.nn.Parameter, ...]:
        """Unknown PDE coefficients trained with the network (inverse problems); none here."""
        return ()

    def metrics(self) -> dict[str, float]:
        """Extra figures logged at every evaluation (e.g. identified coefficients)."""
        return {}

    # -- the truth --------------------------------------------------------------------------
    @abc.abstractmethod
    def reference(self, points: np.ndarray) -> np.ndarray:
        """Reference solution at ``points`` ``(N, d)`` (float64), shape ``(N,)``."""

    @abc.abstractmethod
    def evaluation_grid(self) -> tuple[np.ndarray, tuple[int, ...]]:
        """Points ``(N, d)`` where the relative L2 error is measured, and the grid shape
        (``prod(shape) == N``, last input varying fastest) used for plots."""


def make_observations(problem: Problem, observations: ObservationConfig,
                      generator: torch.Generator) -> torch.Tensor:
    """Observation rows ``(count, d + 1)``: uniform interior points and noisy reference values.

    Noise is Gaussian with standard deviation ``noise × std(values)`` (Raissi et al. 2019).
    """
    unit = torch.rand(observations.count, problem.domain.dim, generator=generator,
                      dtype=torch.float64)
    points = problem.domain.interior(unit)
    values = torch.from_numpy(problem.reference(points.numpy()))
    if observations.noise > 0:
        noise = torch.randn(values.shape, generator=generator, dtype=torch.float64)
        values = values + observations.noise * values.std() * noise
    return torch.cat([points, values[:, None]], dim=1)
