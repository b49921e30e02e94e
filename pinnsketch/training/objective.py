"""Per-term mean-squared losses from a residual dict (plain, or as the Adam phase weights
them), and their weighted total."""
from __future__ import annotations

from typing import Mapping

import torch

from pinnsketch.training.attention import ResidualAttention
from pinnsketch.training.causal import CausalWeights

__all__ = ["adam_phase_losses", "term_losses", "weighted_total"]


def term_losses(residuals: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """L_τ = mean_i r_τ,i² for each term τ; scalar tensors, graph kept."""
    return {term: r.square().mean() for term, r in residuals.items()}


def adam_phase_losses(residuals: Mapping[str, torch.Tensor], times: torch.Tensor | None, *,
                      attention: ResidualAttention | None,
                      causal: CausalWeights | None) -> dict[str, torch.Tensor]:
    """The losses the Adam phase minimises: with ``attention``, those of the attended
    residuals λ r of the physics terms (their multipliers updated); with ``causal``, the pde
    term causally weighted over the pde points' ``times`` (N,)."""
    if attention is not None:
        residuals = {t: attention.attend(t, r) if t != "data" else r
                     for t, r in residuals.items()}
    return {t: causal.loss(r, times) if causal is not None and t == "pde" else r.square().mean()
            for t, r in residuals.items()}


def weighted_total(losses: Mapping[str, torch.Tensor],
                   weights: Mapping[str, float]) -> torch.Tensor:
    """Σ_τ w_τ L_τ with ``weights`` holding every term's weight.

    Hot path: unit weights add no multiply, and the sum starts from the first term, so the
    graph holds no more nodes than a hand-written ``L_pde + L_bc + …``.
    """
    total = None
    for term, loss in losses.items():
        weight = weights[term]
        term_total = loss if weight == 1.0 else weight * loss
        total = term_total if total is None else total + term_total
    return total
