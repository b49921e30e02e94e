"""Residual-based adaptive distribution of collocation points (RAD; Wu, Zhu, Tan, Kartha &
Lu 2023, "A comprehensive study of non-adaptive and residual-based adaptive sampling for
physics-informed neural networks", CMAME 403), with k = c = 1."""
from __future__ import annotations

import torch

from pinnsketch.problems.base import Problem
from pinnsketch.sampling import Sampler

__all__ = ["residual_adaptive_points"]


def residual_adaptive_points(problem: Problem, model: torch.nn.Module, sampler: Sampler,
                             n: int, candidates: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, d)`` float64 interior points: n of ``candidates`` uniform ones drawn without
    replacement with probability ∝ |r(z)| / mean|r| + 1, so points gather where the current
    residual is large while the whole domain stays covered. The residual is evaluated on the
    model's device and dtype, in chunks of 8192 points."""
    parameter = next(model.parameters())
    pool = sampler.interior(candidates)
    magnitudes = []
    for chunk in pool.split(8192):
        points = chunk.to(parameter.device, parameter.dtype).requires_grad_(True)
        residual = problem.pde_residual(model, points)
        magnitudes.append(residual.detach().abs().to("cpu", torch.float64))
    magnitude = torch.cat(magnitudes)
    if magnitude.ndim > 1:  # a system: one magnitude per point
        magnitude = magnitude.reshape(len(pool), -1).norm(dim=1)
    weights = magnitude / magnitude.mean() + 1.0
    chosen = torch.multinomial(weights, min(n, len(pool)), replacement=False,
                               generator=generator)
    return pool[chosen]
