"""The problem protocol: what a PDE definition provides to the trainer.

A problem names its loss terms and returns a **dict of residuals per term** (never one
loss), so the monitor can tell the terms apart. Built-in terms:

- ``pde``: 𝒩[u](z) − f(z) at interior points,
- ``bc``:  u(z) − g(z) on the spatial boundary (Dirichlet, by default; a problem may
  override :meth:`Problem.boundary_residual`, e.g. with a periodic or Neumann condition),
- ``ic``:  u(z) − u₀(z) on the initial slice (evolution problems),
- ``data``: u(z) − u_obs at observation points; its batch rows are ``(z..., u_obs...)``.

Systems (several unknowns, e.g. velocity and pressure) name their outputs in
:attr:`Problem.output_names`; the network then returns ``(N, k)`` for k outputs (``(N,)``
for one), and Dirichlet data, references and observations have one column per output.
A system names its equations in :attr:`Problem.equations` (e.g. ``momentum_x``,
``momentum_y``, ``continuity``): :meth:`Problem.pde_residual` returns ``(N, equations)`` and
each column is a loss term of its own, so weights and the monitor address every equation;
the equations share the interior points of the ``pde`` point set.

A problem may name further condition terms (e.g. ``ic_t``, the initial velocity of a wave):
it adds them to :attr:`Problem.term_measures` (the measure their points are drawn from) and
to :meth:`Problem.physics_terms`, and computes them in :meth:`Problem.condition_residual`.
A residual is ``(N,)``, or ``(N, k)`` for k conditions per point (a periodic pair: values
and slopes); its loss is the mean square over all entries.

With hard constraints the output transform satisfies ``bc`` and ``ic`` exactly and those
terms are dropped. A problem takes points and counts, never configuration objects.

A minimal problem sets ``input_names`` and ``domain`` and implements :meth:`pde_residual`;
``Options`` (its YAML options), :meth:`reference` and :meth:`evaluation_grid` are optional.
Without a reference a run reports no relative L2 error and plots the PDE residual instead.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable, ClassVar, Mapping

import numpy as np
import torch

from pinnsketch.domain import Domain
from pinnsketch.sampling import Sampler

__all__ = ["NoOptions", "Problem", "TERM_MEASURES"]

# The measure (a Sampler method) the points of each built-in term are drawn from.
TERM_MEASURES = {"pde": "interior", "bc": "boundary", "ic": "initial"}

# Default points per plotting axis of a problem without an evaluation grid (≈ 65k points).
_PLOT_POINTS = {1: 1024, 2: 256, 3: 40}


@dataclass(frozen=True)
class NoOptions:
    """The options of a problem that takes none."""


class Problem(abc.ABC):
    """Base class of every PDE problem (built-in or user-defined).

    Subclasses set ``input_names`` (column order of points, e.g. ``("x", "t")``) and
    ``domain`` (a class attribute, or set in ``__init__``) and implement :meth:`pde_residual`.
    Optional: ``Options`` (a frozen dataclass of their YAML options, all with defaults),
    :meth:`reference` and :meth:`evaluation_grid` (set to None, or not defined, when there
    is no known solution), :meth:`boundary_value`/:meth:`initial_value` (Dirichlet data),
    :meth:`output_transform` (hard constraints).
    """

    Options: ClassVar[type] = NoOptions
    input_names: ClassVar[tuple[str, ...]]
    # The unknowns (network outputs), in column order; one output gives (N,) values.
    output_names: ClassVar[tuple[str, ...]] = ("u",)
    # The outputs ``reference`` returns, in its column order (None: all of output_names),
    # e.g. the velocities of a flow whose pressure is known only up to a constant.
    reference_outputs: ClassVar[tuple[str, ...] | None] = None
    # The loss terms of the PDE: one, "pde", or one per equation of a system.
    equations: ClassVar[tuple[str, ...]] = ("pde",)
    term_measures: ClassVar[Mapping[str, str]] = TERM_MEASURES
    # {input name: period} of a problem whose ``bc`` term is periodicity in those inputs.
    periodic_inputs: ClassVar[Mapping[str, float]] = {}
    domain: Domain
    reference: Callable[[np.ndarray], np.ndarray] | None = None
    evaluation_grid: Callable[[], tuple[np.ndarray, tuple[int, ...]]] | None = None

    def __init__(self, options=None):
        self.options = self.Options() if options is None else options

    # -- terms ----------------------------------------------------------------------------
    def physics_terms(self, hard_constraints: bool) -> tuple[str, ...]:
        """Names of the physics loss terms, in a fixed order."""
        if hard_constraints:
            return self.equations
        return self.equations + (("bc", "ic") if self.domain.time is not None else ("bc",))

    @property
    def compared_outputs(self) -> tuple[str, ...]:
        """The outputs the reference gives, in its column order."""
        return self.output_names if self.reference_outputs is None else self.reference_outputs

    def point_set(self, term: str) -> str:
        """The batch entry (point set) a loss term is evaluated on: ``pde`` for every
        equation of a system, the term itself otherwise."""
        return "pde" if term in self.equations else term

    def collocation(self, sampler: Sampler,
                    counts: Mapping[str, int]) -> dict[str, torch.Tensor]:
        """Fresh float64 point sets ``(counts[term], d)`` for each physics term in ``counts``,
        drawn from the term's measure (:attr:`term_measures`), in the order of ``counts``."""
        return {term: getattr(sampler, self.term_measures[term])(n)
                for term, n in counts.items() if term in self.term_measures}

    def residuals(self, model: torch.nn.Module,
                  batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Residual ``(N_term,)`` or ``(N_term, k)`` of each term in ``batch`` (same keys,
        same order; a system's ``pde`` points give one entry per equation instead)."""
        out = {}
        for term, points in batch.items():
            if term == "pde":
                residual = self.pde_residual(model, points)
                if self.equations == ("pde",):
                    out[term] = residual
                else:
                    out.update({e: residual[:, i] for i, e in enumerate(self.equations)})
            elif term == "bc":
                out[term] = self.boundary_residual(model, points)
            elif term == "ic":
                out[term] = self.initial_residual(model, points)
            elif term == "data":
                dim = self.domain.dim
                values = points[:, dim:] if len(self.output_names) > 1 else points[:, dim]
                out[term] = model(points[:, :dim]) - values
            elif term in self.term_measures:
                out[term] = self.condition_residual(term, model, points)
            else:
                raise KeyError(f"problem {type(self).__name__} has no term {term!r}")
        return out

    # -- the PDE ----------------------------------------------------------------------------
    @abc.abstractmethod
    def pde_residual(self, model: torch.nn.Module, points: torch.Tensor) -> torch.Tensor:
        """𝒩[u](z) − f(z) at interior points ``(N, d)`` with exact autograd derivatives:
        ``(N,)``, or ``(N, len(equations))`` for a system."""

    def boundary_residual(self, model: torch.nn.Module, points: torch.Tensor) -> torch.Tensor:
        """The ``bc`` residual at boundary points ``(N, d)``: u − g (Dirichlet) by default."""
        return model(points) - self.boundary_value(points)

    def initial_residual(self, model: torch.nn.Module, points: torch.Tensor) -> torch.Tensor:
        """The ``ic`` residual at initial points ``(N, d)``: u − u₀."""
        return model(points) - self.initial_value(points)

    def condition_residual(self, term: str, model: torch.nn.Module,
                           points: torch.Tensor) -> torch.Tensor:
        """The residual of a further condition term (one added to :attr:`term_measures`)."""
        raise NotImplementedError(f"{type(self).__name__} names the term {term!r} but "
                                  f"defines no condition_residual for it")

    def boundary_value(self, points: torch.Tensor) -> torch.Tensor:
        """Dirichlet data g on the boundary, ``(N,)`` (``(N, k)`` for k outputs); zero
        unless overridden."""
        k = len(self.output_names)
        return points.new_zeros((points.shape[0], k) if k > 1 else points.shape[0])

    def initial_value(self, points: torch.Tensor) -> torch.Tensor:
        """Initial data u₀ on the initial slice, ``(N,)`` (``(N, k)`` for k outputs)."""
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

    # -- the truth (optional) ----------------------------------------------------------------
    # ``reference(points (N, d) float64) -> (N,)`` (``(N, k)`` for the k compared_outputs
    # of a system) and ``evaluation_grid() -> (points (N, d),
    # shape)`` (``prod(shape) == N``, last input varying fastest), where a solution is known.

    @property
    def has_reference(self) -> bool:
        return self.reference is not None

    def plot_grid(self) -> tuple[np.ndarray, tuple[int, ...]]:
        """The evaluation grid, or a default tensor grid of the domain when there is none."""
        if self.evaluation_grid is not None:
            return self.evaluation_grid()
        counts = (_PLOT_POINTS[min(self.domain.dim, 3)],) * self.domain.dim
        return self.domain.grid(counts).numpy(), counts
