"""The optimisers of the two phases, from the train section: the first-order phase (Adam, or
Sketchy) and the phase after it (torch's L-BFGS, or a dense quasi-Newton method)."""
from __future__ import annotations

import torch

from pinnsketch.config import TrainConfig
from pinnsketch.optim import QuasiNewton, Sketchy

__all__ = ["first_order_optimizer", "second_order_optimizer"]


def first_order_optimizer(parameters: list[torch.Tensor],
                          train: TrainConfig) -> torch.optim.Optimizer:
    """``train.first_order``: Adam, or Sketchy with ``train.sketchy_rank`` rows per factor
    (Adam's betas; the phase keeps the name adam in the record)."""
    if train.first_order == "sketchy":
        return Sketchy(parameters, lr=train.lr, rank=train.sketchy_rank)
    return torch.optim.Adam(parameters, lr=train.lr)


def second_order_optimizer(parameters: list[torch.Tensor],
                           train: TrainConfig) -> torch.optim.Optimizer:
    """``train.quasi_newton``: torch's L-BFGS (strong Wolfe, ``train.lbfgs_history`` pairs)
    or :class:`~pinnsketch.optim.QuasiNewton` with a dense H; ``max_iter`` is set per chunk."""
    if train.quasi_newton == "lbfgs":
        return torch.optim.LBFGS(
            parameters, lr=1.0, max_iter=train.eval_every, history_size=train.lbfgs_history,
            tolerance_grad=train.lbfgs_tolerance_grad,
            tolerance_change=train.lbfgs_tolerance_change, line_search_fn="strong_wolfe")
    return QuasiNewton(parameters, update=train.quasi_newton, max_iter=train.eval_every,
                       tolerance_grad=train.lbfgs_tolerance_grad,
                       tolerance_change=train.lbfgs_tolerance_change,
                       max_hessian_bytes=train.max_hessian_mib * 2 ** 20)
