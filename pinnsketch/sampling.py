"""Collocation sampling on the unit cube: uniform random, Latin hypercube, scrambled Sobol.

All randomness comes from a passed-in ``torch.Generator``; quasi-random samplers draw their
scipy seed from it, so one generator state fixes every point set (and is checkpointed).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from scipy.stats import qmc

from pinnsketch.domain import Domain

__all__ = ["UNIT_SAMPLERS", "Sampler"]


def _scipy_rng(generator: torch.Generator) -> np.random.Generator:
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return np.random.default_rng(seed)


def _uniform(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, d, generator=generator, dtype=torch.float64)


def _latin_hypercube(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    return torch.from_numpy(qmc.LatinHypercube(d, rng=_scipy_rng(generator)).random(n))


def _sobol(n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    # Draw the next power of two (Sobol's balance holds there) and keep the first n.
    m = max(0, math.ceil(math.log2(n)))
    points = qmc.Sobol(d, scramble=True, rng=_scipy_rng(generator)).random_base2(m)
    return torch.from_numpy(points[:n])


UNIT_SAMPLERS: dict[str, Callable[[int, int, torch.Generator], torch.Tensor]] = {
    "uniform": _uniform,
    "lhs": _latin_hypercube,
    "sobol": _sobol,
}


class Sampler:
    """Draws point sets on a domain's measures.

    Args:
        domain: where the points live.
        method: a name in :data:`UNIT_SAMPLERS`.
        generator: the only source of randomness (CPU generator).

    All points are float64 on the CPU; the trainer casts and moves them once per draw.

    Attributes:
        time_fraction: f in (0, 1]: interior and boundary points of an evolution problem are
            drawn in the time window [t0, t0 + f (t1 − t0)] (time marching); 1 is the whole
            interval. Initial points are unaffected.
    """

    def __init__(self, domain: Domain, method: str, generator: torch.Generator):
        if method not in UNIT_SAMPLERS:
            raise ValueError(f"sampling method {method!r} is not one of {sorted(UNIT_SAMPLERS)}")
        self.domain = domain
        self.generator = generator
        self._unit = UNIT_SAMPLERS[method]
        self.time_fraction = 1.0

    def interior(self, n: int) -> torch.Tensor:
        return self.domain.sample_interior(n, self._draw_windowed)

    def _draw_windowed(self, n: int) -> torch.Tensor:
        return self._windowed(self._unit(n, self.domain.dim, self.generator))

    def boundary(self, n: int) -> torch.Tensor:
        unit = self._windowed(self._unit(n, self.domain.dim, self.generator))
        return self.domain.boundary(unit, self.generator)

    def _windowed(self, unit: torch.Tensor) -> torch.Tensor:
        # Time is the last unit coordinate; scaling it keeps the draw's distribution.
        if self.time_fraction == 1.0 or self.domain.time is None:
            return unit
        unit = unit.clone()
        unit[:, -1] *= self.time_fraction
        return unit

    def initial(self, n: int) -> torch.Tensor:
        return self.domain.sample_initial(n, lambda m: self._unit(m, self.domain.dim,
                                                                  self.generator))
