"""Exact derivatives of a network output with respect to its inputs (autograd, never FD).

Every call keeps the graph (``create_graph=True``) so residuals built from these
derivatives can themselves be differentiated with respect to the network weights.
"""
from __future__ import annotations

import torch

__all__ = ["gradient", "partial", "laplacian"]


def gradient(u: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """All first derivatives ``(N, d)`` of ``u`` ``(N,)`` at ``points`` ``(N, d)``.

    Rows of ``u`` depend only on the matching row of ``points`` (pointwise network), so the
    gradient of ``u.sum()`` holds each row's own derivatives.
    """
    (grad,) = torch.autograd.grad(u.sum(), points, create_graph=True)
    return grad


def partial(u: torch.Tensor, points: torch.Tensor, axis: int) -> torch.Tensor:
    """∂u/∂z_axis, shape ``(N,)``."""
    return gradient(u, points)[:, axis]


def laplacian(u: torch.Tensor, points: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """Σ_axis ∂²u/∂z_axis², shape ``(N,)``, over the given (spatial) axes."""
    first = gradient(u, points)
    return sum(partial(first[:, axis], points, axis) for axis in axes)
