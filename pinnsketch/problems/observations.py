"""Observation data for a ``data`` term, drawn from a problem's reference solution."""
from __future__ import annotations

import torch

from pinnsketch.errors import ConfigError
from pinnsketch.problems.base import Problem

__all__ = ["make_observations"]


def make_observations(problem: Problem, count: int, noise: float,
                      generator: torch.Generator) -> torch.Tensor:
    """Observation rows ``(count, d + k)``: uniform interior points and noisy reference values
    of the k outputs.

    Noise is Gaussian with standard deviation ``noise × std(values)`` per output (Raissi et
    al. 2019).

    Raises:
        ConfigError: if the problem has no reference solution to observe, or its reference
            leaves out an output.
    """
    if not problem.has_reference:
        raise ConfigError(f"problem.observations.count: got {count}, but "
                          f"{type(problem).__name__} has no reference solution to draw "
                          f"observations from (define reference(points), or set count: 0)")
    if problem.compared_outputs != problem.output_names:
        raise ConfigError(f"problem.observations.count: got {count}, but the reference of "
                          f"{type(problem).__name__} gives {', '.join(problem.compared_outputs)} "
                          f"only, not every output ({', '.join(problem.output_names)})")
    dim = problem.domain.dim
    points = problem.domain.sample_interior(count, lambda m: torch.rand(
        m, dim, generator=generator, dtype=torch.float64))
    values = torch.from_numpy(problem.reference(points.numpy()))
    if noise > 0:  # per output: each column's own spread
        spread = values.std(dim=0) if values.ndim == 2 else values.std()
        values = values + noise * spread * torch.randn(values.shape, generator=generator,
                                                       dtype=torch.float64)
    return torch.cat([points, values.reshape(count, -1)], dim=1)
