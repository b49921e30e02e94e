"""Adaptive sketch rank for the monitor's sketched banks.

Each sketched weight shape gets a :class:`~pinnsketch.sketch.rank.RankController` within
[``rank``, ``max_rank``] (the statistics always read the leading ``rank`` directions, so
the sketch never holds fewer). At every spectral evaluation the bank's error probes give,
for every stream and every truncation rank r of its estimate Â, the estimated relative
error ‖Ḡ − Â_r‖_F/‖Ḡ‖_F (the scree profile); the worst stream's value at the current
rank, and the worst-case profile (per r, the largest estimate over the streams), feed the
controller: it raises the rank while rank r leaves more than ``tolerance`` of Ḡ out and
lowers it when far less is left, so the sketch holds as many directions as the EMA
gradients need. A new rank resizes the bank (in place when it shrinks, a restart of its
sketches when it grows). Each change is logged; the ranks and the last estimates go
to the metrics record (``monitor_rank``, ``monitor_rank_error``).
"""
from __future__ import annotations

import logging
import math
from typing import Any, Mapping

import torch

from pinnsketch.monitor.banks import BankGroup
from pinnsketch.sketch.rank import RankController

__all__ = ["SketchRanks"]

log = logging.getLogger(__name__)


class SketchRanks:
    """Rank controllers of the sketched banks of one monitor.

    Args:
        groups: the monitor's bank groups; those with a sketched bank and room above its
            rank (min(max_rank, m, n) > rank) are controlled.
        rank: the lowest sketch rank (the monitor's statistics rank).
        max_rank: the highest.
        tolerance: relative error tolerance of the controllers.
        patience: consecutive spectral evaluations out of band before a change.

    Memory: a few Python numbers per sketched shape.
    """

    def __init__(self, groups: list[BankGroup], rank: int, max_rank: int, tolerance: float,
                 patience: int):
        self.controllers: dict[tuple[int, int], RankController] = {}
        self.errors: dict[tuple[int, int], float] = {}
        for group in groups:
            high = min(max_rank, *group.shape)
            if group.bank.kind == "three_sketch" and high > group.bank.rank:  # room to move
                self.controllers[group.shape] = RankController(group.bank.rank, high,
                                                               tolerance, patience)
                self.errors[group.shape] = math.nan

    def observe(self, group: BankGroup, sigma: torch.Tensor, u: torch.Tensor,
                v: torch.Tensor) -> None:
        """Feed one spectral evaluation ``(sigma, u, v)`` of ``group``'s bank to its
        controller, and resize the bank if the controller moves (one host read)."""
        controller = self.controllers.get(group.shape)
        if controller is None:
            return
        profile = group.bank.scree(sigma, u, v).nan_to_num(nan=math.inf).amax(dim=0)
        before = controller.rank
        worst = float(profile[before - 1])  # the worst stream's error at the current rank
        self.errors[group.shape] = worst
        after = controller.step(worst if math.isfinite(worst) else math.nan, profile)
        if after != before:
            group.bank.resize(after)
            m, n = group.shape
            log.info("monitor: %d×%d layers' sketch rank %d → %d (estimated relative "
                     "error %.3g, tolerance %.3g)", m, n, before, after, worst, controller.tol)

    def metrics(self) -> dict[str, Any]:
        """``monitor_rank`` and ``monitor_rank_error`` per sketched shape ("m×n")."""
        key = lambda shape: f"{shape[0]}x{shape[1]}"
        return {"monitor_rank": {key(s): c.rank for s, c in self.controllers.items()},
                "monitor_rank_error": {key(s): e for s, e in self.errors.items()}}

    def state_dict(self) -> dict[str, Any]:
        return {f"{m}x{n}": {"controller": c.state_dict(), "error": self.errors[m, n]}
                for (m, n), c in self.controllers.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for (m, n), controller in self.controllers.items():
            controller.load_state_dict(state[f"{m}x{n}"]["controller"])
            self.errors[m, n] = float(state[f"{m}x{n}"]["error"])
