"""The phases of dynamical low-rank layers in the Adam phase (``model.low_rank``).

Every ``substeps`` Adam steps the low-rank layers switch phase (:mod:`pinnsketch.low_rank`):
after a K phase their bases are augmented (K → L), after an L phase the core is truncated
to the tolerance (L → K, the rank may change). Adam then trains the factor of the new phase;
the state it kept for K and L is dropped at each switch, because the factors' coordinates
change with the bases (Schotthöfer, Kusch et al.'s trainers take optimiser steps within a
phase in the same way). The switches depend on the Adam step count alone, so a resumed run
switches where an uninterrupted one does.
"""
from __future__ import annotations

import torch

from pinnsketch.low_rank import LowRankLinear, low_rank_layers

__all__ = ["LowRankSchedule", "low_rank_schedule"]


class LowRankSchedule:
    """Switches ``layers`` between their K and L phases every ``substeps`` Adam steps."""

    def __init__(self, layers: list[LowRankLinear], substeps: int):
        if substeps < 1:
            raise ValueError(f"substeps must be >= 1, got {substeps}")
        self.layers, self.substeps = layers, substeps

    def after_step(self, adam_done: int, optimizer: torch.optim.Optimizer) -> None:
        """Called after Adam step number ``adam_done`` (counting from 1)."""
        if adam_done % self.substeps:
            return
        for layer in self.layers:
            if layer.phase:
                layer.truncate()
            else:
                layer.augment()
            for factor in (layer.K, layer.L):
                optimizer.state.pop(factor, None)

    def metrics(self) -> dict[str, object]:
        """The rank of each low-rank layer and the phase they are in."""
        return {"low_rank": [layer.rank for layer in self.layers],
                "low_rank_phase": "L" if self.layers and self.layers[0].phase else "K"}


def low_rank_schedule(model: torch.nn.Module, substeps: int) -> LowRankSchedule | None:
    """The schedule of ``model``'s low-rank layers, or None when it has none."""
    layers = low_rank_layers(model)
    return LowRankSchedule(layers, substeps) if layers else None
