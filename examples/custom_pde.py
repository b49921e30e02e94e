"""Add your own PDE: one Problem subclass, named in YAML as "module:Class".

1D Helmholtz equation u'' + k² u = f on [0, 1] with u(0) = u(1) = 0 and the manufactured
solution u* = sin(mπx), so f = (k² − (mπ)²) sin(mπx). ``custom_pde.yaml`` beside this file
uses it with ``problem: {type: "custom_pde:Helmholtz1D", k: 4.0}``::

    cd examples && pinnsketch run custom_pde.yaml

Python: ``python examples/custom_pde.py`` trains it and prints the relative L2 error.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pinnsketch.derivatives import gradient, partial
from pinnsketch.domain import Domain
from pinnsketch.problems import Problem


@dataclass(frozen=True)
class HelmholtzOptions:
    k: float = 4.0   # wave number
    m: int = 2       # mode of the manufactured solution


class Helmholtz1D(Problem):
    """u'' + k² u = f on [0, 1], zero Dirichlet data; points are (x,)."""

    Options = HelmholtzOptions
    input_names = ("x",)
    domain = Domain((0.0,), (1.0,))

    def pde_residual(self, model, points):
        k, m = self.options.k, self.options.m
        u = model(points)
        u_xx = partial(gradient(u, points)[:, 0], points, 0)
        f = (k ** 2 - (m * math.pi) ** 2) * torch.sin(m * math.pi * points[:, 0])
        return u_xx + k ** 2 * u - f

    def reference(self, points: np.ndarray) -> np.ndarray:
        return np.sin(self.options.m * np.pi * points[:, 0])

    def evaluation_grid(self):
        return np.linspace(0.0, 1.0, 201)[:, None], (201,)


def main(steps: int = 2000, out: str | Path | None = None) -> float:
    """Train the example for ``steps`` Adam steps (plus L-BFGS); return its rel L2 error."""
    import pinnsketch

    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))  # so "custom_pde:Helmholtz1D" imports from here
    config = pinnsketch.load_config(here / "custom_pde.yaml",
                                    [f"train.adam_steps={steps}", "output.progress=false",
                                     "output.plots=false"])
    run = pinnsketch.train(config, out=out or f"runs/custom-pde-{steps}")
    return run.summary["rel_l2"]


if __name__ == "__main__":
    print(f"relative L2 error: {main():.3e}")
