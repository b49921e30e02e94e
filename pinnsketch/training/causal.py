"""Causal training (Wang, Sankaran & Perdikaris 2024, "Respecting causality for training
physics-informed neural networks", CMAME 421): the PDE loss of an evolution problem split
into M time slabs and weighted so later times count only once earlier ones are fitted.

    L_pde = (1/M) Σ_i w_i L_i,   w_i = exp(−ε Σ_{k<i} L_k),   w_0 = 1,

with L_i the mean squared residual of the points in slab i and the weights held constant
under differentiation (``detach``): they steer the update, they are not minimised.

Distributed, each rank holds a shard of the points: the slab sums and counts are averaged
over ranks (one all-reduce) so every rank sees the slab losses of the union and computes the
same weights, and each rank's loss is w · (its slab sums) / (the mean count), whose rank
average is the causal loss of the union and whose averaged gradient is that loss's gradient.
"""
from __future__ import annotations

from typing import Callable

import torch

__all__ = ["CausalWeights", "slab_sums"]


def slab_sums(values: torch.Tensor, times: torch.Tensor, t0: float, t1: float,
              slabs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums ``(slabs,)`` of ``values`` (N,) over equal time slabs of [t0, t1] (times outside
    go to the end slabs), and the point count of each, in ``values``' dtype."""
    slab = ((times.detach() - t0) / (t1 - t0) * slabs).floor().clamp(0, slabs - 1).long()
    sums = values.new_zeros(slabs).index_add(0, slab, values)
    return sums, torch.bincount(slab, minlength=slabs).to(values.dtype)


class CausalWeights:
    """The causal PDE loss of one time interval.

    Args:
        chunks: M, the number of equal time slabs of [t0, t1].
        tolerance: ε ≥ 0 (0: every weight is 1, the plain loss up to slab averaging).
        t0, t1: the time interval (time is the points' last column).
        average: distributed, replaces a list of tensors by their means over ranks in place
            (:meth:`pinnsketch.training.distributed.DistributedContext.average_`); None in
            one process.
    """

    def __init__(self, chunks: int, tolerance: float, t0: float, t1: float,
                 average: Callable[[list[torch.Tensor]], None] | None = None):
        if chunks < 1 or tolerance < 0 or not t1 > t0:
            raise ValueError(f"causal weights: chunks {chunks!r} must be >= 1, tolerance "
                             f"{tolerance!r} >= 0 and t1 > t0 ({t0!r}, {t1!r})")
        self.chunks, self.tolerance, self.t0, self.t1 = chunks, tolerance, t0, t1
        self.average = average
        self.last_weights: torch.Tensor | None = None  # (M,), of the last loss taken

    def loss(self, residual: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """The weighted PDE loss of residuals ``(N,)`` (or ``(N, k)``) at times ``(N,)``
        (distributed: this rank's share, see the module docstring; a sync point)."""
        square = residual.square().reshape(len(residual), -1).mean(dim=1)
        sums, counts = slab_sums(square, times, self.t0, self.t1, self.chunks)
        union_sums = sums.detach()
        if self.average is not None:
            union_sums = union_sums.clone()
            self.average([union_sums, counts])
        counts = torch.where(counts > 0, counts, torch.ones_like(counts))  # empty slab: L = 0
        slab_loss = union_sums / counts
        before = torch.cumsum(slab_loss, 0) - slab_loss  # Σ_{k<i} L_k
        weights = torch.exp(-self.tolerance * before)
        self.last_weights = weights
        return (weights * (sums / counts)).mean()

    def metrics(self) -> dict[str, object]:
        """The last weights (a list of M floats) and their minimum (the latest slab's)."""
        if self.last_weights is None:
            return {}
        weights = self.last_weights.cpu().tolist()
        return {"causal_weights": weights, "causal_min_weight": min(weights)}
