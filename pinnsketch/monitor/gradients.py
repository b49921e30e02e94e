"""Per-term weight gradients of a module, taken explicitly (what the monitor consumes)."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

__all__ = ["linear_layers", "term_gradients"]


def linear_layers(module: nn.Module) -> list[nn.Linear]:
    """The Linear layers of ``module`` in forward order (``module.linear_layers`` if it has
    one, as :class:`pinnsketch.model.PINN` does; else registration order)."""
    layers = getattr(module, "linear_layers", None)
    if layers is None:
        layers = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return list(layers)


def term_gradients(losses: Mapping[str, torch.Tensor], module: nn.Module,
                   layers: Sequence[int] = ()) -> dict[str, dict[str, torch.Tensor]]:
    """Per-term weight gradients ``{term: {"layer<i>": ∂L_term/∂W_i (d_out × d_in)}}``.

    One ``torch.autograd.grad(L_term, weights, retain_graph=True)`` per term, as the trainer
    does on monitor steps (never module hooks: residuals built with ``create_graph=True`` fire
    them too). The graph is kept, so the caller can still ``backward()`` the total. A layer a
    term does not reach gets zeros.

    Args:
        losses: scalar loss tensors with their graphs.
        module: the network; its Linear layers are numbered as in :func:`linear_layers`.
        layers: indices of the layers to return; empty for all.
    """
    chosen = linear_layers(module)
    indices = list(layers) or list(range(len(chosen)))
    weights = [chosen[i].weight for i in indices]
    out = {}
    for term, loss in losses.items():
        grads = torch.autograd.grad(loss, weights, retain_graph=True, allow_unused=True)
        out[term] = {f"layer{i}": g.detach() if g is not None else torch.zeros_like(w)
                     for i, g, w in zip(indices, grads, weights)}
    return out
