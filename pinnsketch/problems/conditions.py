"""Residuals of boundary and initial conditions beyond Dirichlet data, for problems to use.

Each takes the network and the points of its term and returns the residual the loss
squares: ``(N,)``, or ``(N, k)`` for k conditions per point.
"""
from __future__ import annotations

import torch

from pinnsketch.derivatives import gradient
from pinnsketch.domain import Domain

__all__ = ["neumann_residual", "periodic_residual", "time_derivative_residual"]


def periodic_residual(model: torch.nn.Module, points: torch.Tensor, domain: Domain,
                      axis: int = 0, slopes: bool = True) -> torch.Tensor:
    """Soft periodicity in space axis ``axis``: u(a) − u(b) and, with ``slopes``,
    ∂u/∂x(a) − ∂u/∂x(b), where a, b are the axis's ends and every other coordinate is the
    point's own (so boundary points on either face give the same pair).

    Returns:
        ``(N, 2)`` values and slopes, or ``(N,)`` values only.
    """
    ends = []
    for value in (domain.space_lows[axis], domain.space_highs[axis]):
        face = points.detach().clone()
        face[:, axis] = value
        ends.append(face.requires_grad_(slopes))
    values = [model(face) for face in ends]
    if not slopes:
        return values[0] - values[1]
    slope = [gradient(u, face)[:, axis] for u, face in zip(values, ends)]
    return torch.stack([values[0] - values[1], slope[0] - slope[1]], dim=1)


def neumann_residual(model: torch.nn.Module, points: torch.Tensor, normals: torch.Tensor,
                     value: torch.Tensor) -> torch.Tensor:
    """∂u/∂n − h at boundary points ``(N, d)`` with outward unit normals ``(N, d)`` (zero in
    the time column) and data h ``(N,)``."""
    u = model(points)
    return (gradient(u, points) * normals).sum(dim=1) - value


def time_derivative_residual(model: torch.nn.Module, points: torch.Tensor,
                             value: torch.Tensor) -> torch.Tensor:
    """∂u/∂t − v₀ at initial points ``(N, d)`` (time the last column): the second initial
    condition of a problem second order in time."""
    u = model(points)
    return gradient(u, points)[:, -1] - value
