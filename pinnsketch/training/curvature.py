"""The Hessian's top eigenvalues per loss term at the current parameters and points: the
ill-conditioning evidence of Rathore et al. 2024 (PINN losses have Hessians whose top
eigenvalues are orders of magnitude apart between terms and far above the bulk, which slows
first-order methods), computed by Lanczos (:mod:`pinnsketch.monitor.curvature`) on exact
Hessian-vector products H_τ v = ∇_θ(∇_θ L_τ · v) of the plain per-term losses.

Cost per term: ``steps`` HVPs, each about two backward passes through the residual graph.
Distributed, each HVP is averaged over ranks (the HVP of the loss on the union of the
shards) and every rank starts from the same vector, so every rank gets the same values.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch

from pinnsketch.monitor.curvature import lanczos_ritz_values

__all__ = ["hessian_top"]


def hessian_top(losses: Mapping[str, torch.Tensor], parameters: list[torch.Tensor], *,
                steps: int, top: int, seed: int,
                average: Callable[[list[torch.Tensor]], None] | None = None
                ) -> dict[str, list[float]]:
    """The ``top`` largest Ritz values of each term's Hessian (descending).

    Args:
        losses: per-term scalar losses with their graph (``create_graph``-able).
        parameters: θ; steps: Lanczos steps (capped at the parameter count).
        seed: of the start vector (e.g. the step count, so the values are reproducible and
            the training generator is untouched).
        average: distributed, averages a list of tensors over ranks in place; else None.
    """
    dim = sum(p.numel() for p in parameters)
    out = {}
    for term, loss in losses.items():
        grads = torch.autograd.grad(loss, parameters, create_graph=True, allow_unused=True)
        # A parameter the term does not reach has zero gradient and zero curvature.
        flat_grad = torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                               for g, p in zip(grads, parameters)])
        if not flat_grad.requires_grad:  # the term is constant in θ
            out[term] = [0.0] * min(top, dim)
            continue

        def hvp(v: torch.Tensor) -> torch.Tensor:
            products = torch.autograd.grad(flat_grad, parameters, grad_outputs=v,
                                           retain_graph=True, allow_unused=True)
            flat = torch.cat([(h if h is not None else torch.zeros_like(p)).reshape(-1)
                              for h, p in zip(products, parameters)])
            if average is not None:
                average([flat])
            return flat

        ritz = lanczos_ritz_values(hvp, dim, min(steps, dim),
                                   generator=torch.Generator().manual_seed(seed),
                                   dtype=flat_grad.dtype, device=flat_grad.device)
        out[term] = ritz.flip(0)[:top].detach().cpu().tolist()
    return out
