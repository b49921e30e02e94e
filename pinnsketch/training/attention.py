"""Residual-based attention (RBA; Anagnostopoulos, Toscano, Stergiopulos & Karniadakis 2024,
"Residual-based attention in physics-informed neural networks", CMAME 421): a multiplier per
collocation point that grows where the residual stays large.

    λ_i ← γ λ_i + η |r_i| / max_j |r_j|,    L_τ = mean_i (λ_i r_i)²,

λ starting at 0, updated before each Adam step's loss and held constant under
differentiation; bounded by η / (1 − γ). For a residual of k components per point, |r_i| is
the point's Euclidean norm. The multipliers belong to their points: when the points are
redrawn they start again from 0 (a new point has no residual history).

Distributed, each rank keeps the multipliers of its own points and max_j |r_j| is taken over
all ranks (one all-reduce), so the ranks' multipliers together are those of one process on
the union of the shards.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

__all__ = ["ResidualAttention"]


class ResidualAttention:
    """The RBA multipliers of a run's physics terms.

    Args:
        eta: η > 0, the step of the update; gamma: γ in [0, 1), the decay.
        maximum: distributed, replaces a list of tensors by their maxima over ranks in place
            (:meth:`pinnsketch.training.distributed.DistributedContext.maximum_`); None in
            one process.
    """

    def __init__(self, eta: float, gamma: float,
                 maximum: Callable[[list[torch.Tensor]], None] | None = None):
        if not eta > 0 or not 0 <= gamma < 1:
            raise ValueError(f"residual attention: eta {eta!r} must be > 0 and gamma "
                             f"{gamma!r} in [0, 1)")
        self.eta, self.gamma, self.maximum = eta, gamma, maximum
        self.multipliers: dict[str, torch.Tensor] = {}  # term → (N,)

    def loss(self, term: str, residual: torch.Tensor) -> torch.Tensor:
        """mean((λ r)²) of :meth:`attend` (a scalar with the graph of ``residual``)."""
        return self.attend(term, residual).square().mean()

    def attend(self, term: str, residual: torch.Tensor) -> torch.Tensor:
        """Update ``term``'s multipliers from ``residual`` (N,) or (N, k) and return the
        attended residual λ r (same shape, graph of ``residual``; λ is a constant)."""
        magnitude = residual.detach().reshape(len(residual), -1).norm(dim=1)
        largest = magnitude.max()
        if self.maximum is not None:
            self.maximum([largest])  # a sync point: the largest |r| of every rank's points
        scaled = self.eta * magnitude / largest.clamp_min(torch.finfo(magnitude.dtype).tiny)
        previous = self.multipliers.get(term)
        if previous is None or previous.shape != scaled.shape:
            previous = torch.zeros_like(scaled)
        updated = self.gamma * previous + scaled
        self.multipliers[term] = updated
        return updated.reshape((len(residual),) + (1,) * (residual.ndim - 1)) * residual

    def reset(self) -> None:
        """Forget every multiplier (the points were redrawn)."""
        self.multipliers.clear()

    def metrics(self) -> dict[str, Any]:
        """Mean and largest multiplier per term."""
        return {"rba_mean": {t: float(m.mean()) for t, m in self.multipliers.items()},
                "rba_max": {t: float(m.max()) for t, m in self.multipliers.items()}}

    def state_dict(self) -> dict[str, Any]:
        return {"multipliers": {t: m.clone() for t, m in self.multipliers.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.multipliers = {t: m.clone() for t, m in state["multipliers"].items()}
