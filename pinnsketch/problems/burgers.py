"""1D viscous Burgers: u_t + u u_x = ν u_xx, x ∈ [−1, 1], t ∈ [0, 1].

u(x, 0) = −sin(πx), u(±1, t) = 0. Points are ``(x, t)``. The reference is the Cole–Hopf
solution evaluated by quadrature (:mod:`pinnsketch.references.cole_hopf`).
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
from pinnsketch.references.cole_hopf import burgers_cole_hopf

__all__ = ["Burgers", "BurgersIdentification"]


@dataclass(frozen=True)
class BurgersOptions:
    """nu: viscosity ν (default 0.01/π, the classic benchmark)."""

    nu: float = 0.01 / math.pi

    def __post_init__(self):
        if not self.nu > 0:
            raise ConfigError(f"problem.nu: got {self.nu!r}, must be > 0")


class Burgers(Problem):
    """Viscous Burgers with a shock forming at x = 0 near t ≈ 0.5 (ν = 0.01/π)."""

    Options = BurgersOptions
    input_names = ("x", "t")
    domain = Domain((-1.0,), (1.0,), time=(0.0, 1.0))

    def pde_residual(self, model, points):
        u = model(points)
        du = gradient(u, points)
        u_x, u_t = du[:, 0], du[:, 1]
        u_xx = partial(u_x, points, 0)
        return u_t + u * u_x - self.options.nu * u_xx

    def initial_value(self, points):
        return -torch.sin(math.pi * points[:, 0])

    def output_transform(self, points, raw):
        x, t = points[:, 0], points[:, 1]
        return -torch.sin(math.pi * x) + t * (1.0 - x * x) * raw

    def reference(self, points: np.ndarray) -> np.ndarray:
        return burgers_cole_hopf(points[:, 0], points[:, 1], self.options.nu)

    def evaluation_grid(self):
        # The standard grid of the Burgers benchmark data (Raissi et al. 2019).
        x = np.linspace(-1.0, 1.0, 256)
        t = np.linspace(0.0, 0.99, 100)
        xx, tt = np.meshgrid(x, t, indexing="ij")
        return np.stack([xx.ravel(), tt.ravel()], axis=1), (256, 100)


@dataclass(frozen=True)
class BurgersIdentificationOptions:
    """nu: the true viscosity that generates the data; lambda1_init, lambda2_init: the
    starting guesses of the unknown coefficients (λ₂ > 0; the default e⁻⁶ ≈ 2.5e-3 is the
    start of Raissi et al. 2019)."""

    nu: float = 0.01 / math.pi
    lambda1_init: float = 0.0
    lambda2_init: float = math.exp(-6.0)

    def __post_init__(self):
        if not self.nu > 0:
            raise ConfigError(f"problem.nu: got {self.nu!r}, must be > 0")
        if not (math.isfinite(self.lambda2_init) and self.lambda2_init > 0):
            raise ConfigError(f"problem.lambda2_init: got {self.lambda2_init!r}, must be > 0 "
                              f"(λ₂ is a viscosity, learned as log λ₂)")


class BurgersIdentification(Burgers):
    """Burgers parameter identification (Raissi et al. 2019): learn λ₁, λ₂ in
    u_t + λ₁ u u_x − λ₂ u_xx = 0 from observations of u (true λ₁ = 1, λ₂ = ν).

    λ₂ is learned as log λ₂, as Raissi et al. do: λ₂ ≈ 3e-3 sits three orders of magnitude
    below λ₁, and a raw λ₂ would take Adam steps of lr ≈ λ₂ itself and give L-BFGS a badly
    scaled direction. The loss has the PDE residual and the data misfit only (no BC/IC
    terms), so ``problem.observations.count`` must be positive.
    """

    Options = BurgersIdentificationOptions

    def __init__(self, options=None):
        super().__init__(options)
        self.lambda1 = torch.nn.Parameter(torch.tensor(self.options.lambda1_init, dtype=torch.float64))
        self.log_lambda2 = torch.nn.Parameter(
            torch.tensor(math.log(self.options.lambda2_init), dtype=torch.float64))

    @property
    def lambda2(self) -> torch.Tensor:
        """λ₂ = exp(log λ₂), a 0-d tensor in the graph of ``log_lambda2``."""
        return self.log_lambda2.exp()

    def physics_terms(self, hard_constraints: bool) -> tuple[str, ...]:
        return ("pde",)

    def pde_residual(self, model, points):
        u = model(points)
        du = gradient(u, points)
        u_x, u_t = du[:, 0], du[:, 1]
        u_xx = partial(u_x, points, 0)
        return u_t + self.lambda1 * u * u_x - self.lambda2 * u_xx

    def parameters(self):
        return (self.lambda1, self.log_lambda2)

    def metrics(self) -> dict[str, float]:
        l1, l2 = float(self.lambda1.detach()), float(self.lambda2.detach())
        return {"lambda1": l1, "lambda2": l2,
                "lambda1_error": abs(l1 - 1.0),
                "lambda2_error": abs(l2 - self.options.nu) / self.options.nu}
