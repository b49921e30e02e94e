"""Adaptive loss weights: each term's weight set from the size of its gradient (grad_norm) or
of its neural tangent kernel (ntk), smoothed by a moving average.

    grad_norm (Wang, Wang, Bhartari & Perdikaris 2023, "An expert's guide to training
    physics-informed neural networks"):   λ̂_τ = Σ_σ ‖∇_θ L_σ‖ / ‖∇_θ L_τ‖
    ntk (Wang, Yu & Perdikaris 2022, "When and why PINNs fail to train"):
                                          λ̂_τ = Σ_σ tr K_σ / tr K_τ,
    tr K_τ = (1/N_τ) Σ_n ‖∇_θ r_τ(z_n)‖²  (the mean diagonal of the term's NTK, as jaxpi)
    then  λ_τ ← ema · λ_τ + (1 − ema) · λ̂_τ.

The norms are of the unweighted terms over every trainable parameter. The weights start from
``train.weights`` (1 where unnamed), change only in the Adam phase and stay fixed after it
(a line search needs one objective).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import torch

__all__ = ["LossBalancer", "ntk_traces", "proposed_weights"]


def proposed_weights(sizes: Mapping[str, float]) -> dict[str, float | None]:
    """λ̂_τ = Σ_σ s_σ / s_τ for gradient norms or NTK traces ``sizes``; None where s_τ is 0
    or not finite (that term's weight is then left as it is)."""
    total = sum(s for s in sizes.values() if math.isfinite(s))
    return {t: total / s if math.isfinite(s) and s > 0 else None for t, s in sizes.items()}


def ntk_traces(residuals: Mapping[str, torch.Tensor],
               parameters: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """tr K_τ / N_τ = mean over components of ‖∇_θ r_τ,n‖² for residuals ``(N,)`` or
    ``(N, k)`` (each of the N·k components is one row of the term's Jacobian).

    One backward pass per component: call it on a few points (the cost is N·k passes of the
    graph of those points).
    """
    traces = {}
    for term, residual in residuals.items():
        flat = residual.reshape(-1)
        total = flat.new_zeros((), dtype=torch.float64)
        for n in range(len(flat)):
            grads = torch.autograd.grad(flat[n], parameters, retain_graph=True,
                                        allow_unused=True)
            total = total + sum(g.detach().to(torch.float64).square().sum()
                                for g in grads if g is not None)
        traces[term] = total / len(flat)
    return traces


class LossBalancer:
    """The adaptive weights of one run.

    Args:
        scheme: ``grad_norm`` or ``ntk``.
        every: Adam steps between updates (the first at step 0).
        ema: weight of the old value in the moving average, in [0, 1).
        initial: ``{term: λ_τ}`` to start from (``train.weights``, 1 where unnamed).
    """

    def __init__(self, scheme: str, every: int, ema: float, initial: Mapping[str, float]):
        if scheme not in ("grad_norm", "ntk") or every < 1 or not 0 <= ema < 1:
            raise ValueError(f"loss balancing: scheme {scheme!r} must be grad_norm or ntk, "
                             f"every {every!r} >= 1 and ema {ema!r} in [0, 1)")
        self.scheme, self.every, self.ema = scheme, every, ema
        self.weights = {t: float(w) for t, w in initial.items()}
        self.updates = 0

    def due(self, adam_step: int) -> bool:
        return adam_step % self.every == 0

    def update(self, sizes: Mapping[str, float]) -> None:
        """Move every weight toward λ̂ of ``sizes`` (gradient norms or NTK traces)."""
        for term, proposal in proposed_weights(sizes).items():
            if proposal is not None:
                self.weights[term] = self.ema * self.weights[term] + (1 - self.ema) * proposal
        self.updates += 1

    def update_from_gradients(self, per_term: Mapping[str, Sequence[torch.Tensor | None]]) -> None:
        """grad_norm: from each term's gradients ``{term: (∂L_τ/∂θ_j)_j}`` (None: unused)."""
        squares = torch.stack([sum(g.detach().to(torch.float64).square().sum()
                                   for g in grads if g is not None)
                               for grads in per_term.values()])
        self.update(dict(zip(per_term, squares.sqrt().cpu().tolist())))  # one host sync

    def update_from_ntk(self, residuals: Callable[[], Mapping[str, torch.Tensor]],
                        parameters: Sequence[torch.Tensor],
                        reduce: Callable[[list[torch.Tensor]], None] | None = None) -> None:
        """ntk: from the traces of ``residuals()`` (fresh residuals on a few points per term);
        ``reduce`` averages a list of tensors over ranks in place (distributed)."""
        traces = ntk_traces(residuals(), parameters)
        stacked = torch.stack(list(traces.values()))
        if reduce is not None:
            reduce([stacked])
        self.update(dict(zip(traces, stacked.cpu().tolist())))

    def metrics(self) -> dict[str, Any]:
        return {"loss_weights": dict(self.weights)}

    def state_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "updates": self.updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.weights.update({t: float(w) for t, w in state["weights"].items()})
        self.updates = int(state["updates"])
