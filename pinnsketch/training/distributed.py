"""Data-parallel training on ``torch.distributed`` (launched by ``torchrun``).

Each rank draws its own shard of collocation points from a rank-offset generator and owns
``observations[rank::world_size]``; after every backward pass the gradients are averaged
over ranks with one all-reduce of a flat buffer, so every rank takes the same step.

Why not ``DistributedDataParallel``: PINN residuals differentiate the network with
``autograd.grad(..., create_graph=True)`` and call the model several times per step (one
per loss term); DDP supports neither higher-order gradients nor several forwards per
backward (pytorch/pytorch#63929, #47562). The averaging DDP would do is the one
all-reduce below, done explicitly after the whole backward pass.

With equal shard sizes the mean over ranks of per-rank mean losses is the mean over the
union of the shards, so a run on N ranks equals a single-process run on the union.
L-BFGS: the closure averages loss and gradient the same way, so the line searches of all
ranks see identical values and take identical steps.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from pinnsketch.config.schema import DISTRIBUTED_BACKENDS

__all__ = ["DistributedContext", "init_from_environment"]


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the group: ``rank`` of ``world_size``."""

    rank: int
    world_size: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def average_(self, tensors: list[torch.Tensor]) -> None:
        """Replace each tensor by its mean over ranks (in place; one all-reduce).

        Sync point: blocks until every rank has contributed.
        """
        self._all_reduce_(tensors, dist.ReduceOp.SUM, self.world_size)

    def maximum_(self, tensors: list[torch.Tensor]) -> None:
        """Replace each tensor by its elementwise maximum over ranks (in place; one
        all-reduce). Sync point."""
        self._all_reduce_(tensors, dist.ReduceOp.MAX, 1)

    def _all_reduce_(self, tensors: list[torch.Tensor], op, divisor: int) -> None:
        if not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat, op=op)
        if divisor != 1:
            flat /= divisor
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()

    def gather_objects(self, obj):
        """Every rank's ``obj`` as a list indexed by rank (on every rank)."""
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def init_from_environment(backend: str, device: torch.device,
                          timeout_s: float = 300.0) -> DistributedContext | None:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1), else return None.

    Args:
        backend: ``auto`` (nccl on CUDA, gloo on CPU), ``gloo`` or ``nccl``.
        device: where this rank trains; with CUDA, rank r uses ``cuda:LOCAL_RANK``.
        timeout_s: collective time-out, so a rank that died cannot hang the others forever.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if backend not in DISTRIBUTED_BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {DISTRIBUTED_BACKENDS}")
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return DistributedContext(dist.get_rank(), dist.get_world_size(), backend)
