"""Observation data for a ``data`` term, drawn from a problem's reference solution."""
from __future__ import annotations

import torch

from pinnsketch.errors import ConfigError
from pinnsketch.problems.base import Problem

__all__ = ["make_observations"]


def make_observations(problem: Problem, count: int, noise: float,
                      generator: torch.Generator) -> torch.Tensor:
    """Observation rows ``(count, d + 1)``: uniform interior points and noisy reference values.

    Noise is Gaussian with standard deviation ``noise × std(values)`` (Raissi et al. 2019).

    Raises:
        ConfigError: if the problem has no reference solution to observe.
    """
    if not problem.has_reference:
        raise ConfigError(f"problem.observations.count: got {count}, but "
                          f"{type(problem).__name__} has no reference solution to draw "
                          f"observations from (define reference(points), or set count: 0)")
    unit = torch.rand(count, problem.domain.dim, generator=generator, dtype=torch.float64)
    points = problem.domain.interior(unit)
    values = torch.from_numpy(problem.reference(points.numpy()))
    if noise > 0:
        values = values + noise * values.std() * torch.randn(values.shape, generator=generator,
                                                             dtype=torch.float64)
    return torch.cat([points, values[:, None]], dim=1)
