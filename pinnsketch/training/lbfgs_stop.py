"""Why ``torch.optim.LBFGS`` stopped: its exit tests recomputed (it does not say which fired)."""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["lbfgs_stop_reason"]


def lbfgs_stop_reason(lbfgs: torch.optim.LBFGS, parameters: Sequence[torch.Tensor],
                      loss: float, done: int, iteration: int) -> str | None:
    """The exit test that ended a chunk of ``done`` iterations at loss ``loss``, named with
    the phase's ``iteration`` count; None if the chunk's evaluation budget ran out while the
    loss still decreased (not a stop)."""
    group = lbfgs.param_groups[0]
    state = lbfgs.state[parameters[0]]
    grad = torch.cat([p.grad.reshape(-1) for p in parameters if p.grad is not None])
    if grad.abs().max() <= group["tolerance_grad"]:
        return (f"gradient tolerance: max |∇L| <= tolerance_grad "
                f"({group['tolerance_grad']:g}) at iteration {iteration}")
    d, t = state.get("d"), state.get("t")
    if d is not None and t is not None and float((d * t).abs().max()) <= group["tolerance_change"]:
        return (f"step tolerance: line search step below tolerance_change "
                f"({group['tolerance_change']:g}) at iteration {iteration}; "
                f"the line search could not decrease the loss further")
    prev = state.get("prev_loss")
    if prev is not None and abs(loss - float(prev)) < group["tolerance_change"]:
        return (f"loss tolerance: loss change below tolerance_change "
                f"({group['tolerance_change']:g}) at iteration {iteration}")
    if done == 0:
        return (f"line search failure: no iteration completed within "
                f"{group['max_eval']} function evaluations at iteration {iteration}")
    return None
