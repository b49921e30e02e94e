"""Add your own PDE: one Problem subclass, passed as an object from Python or named in YAML.

1D Helmholtz equation u'' + k² u = f on [0, 1] with u(0) = u(1) = 0 and the manufactured
solution u* = sin(mπx), so f = (k² − (mπ)²) sin(mπx).

Python (the object form; no module path needed)::

    python examples/custom_pde.py

YAML (the string form): ``custom_pde.yaml`` beside this file names the class as
``problem: {type: "custom_pde:Helmholtz1D", k: 4.0}``; the module is found beside the config::

    pinnsketch run examples/custom_pde.yaml
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import pinnsketch
from pinnsketch import Domain, Problem, gradient, partial


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
        u_xx = partial(gradient(model(points), points)[:, 0], points, 0)
        f = (k ** 2 - (m * math.pi) ** 2) * torch.sin(m * math.pi * points[:, 0])
        return u_xx + k ** 2 * model(points) - f

    def reference(self, points: np.ndarray) -> np.ndarray:
        return np.sin(self.options.m * np.pi * points[:, 0])


SETTINGS = {"model": {"width": 20, "depth": 2},
            "sampling": {"interior": 200, "boundary": 2},
            "train": {"adam_steps": 2000, "lbfgs_steps": 500, "eval_every": 250,
                      "dtype": "float64"},
            "output": {"plots": False, "progress": False}}


def main(steps: int = 2000, out: str | Path | None = None) -> float:
    """Train the example (object form) for ``steps`` Adam steps plus 500 L-BFGS iterations;
    return its relative L2 error."""
    settings = {**SETTINGS, "train": {**SETTINGS["train"], "adam_steps": steps}}
    run = pinnsketch.train(settings, problem=Helmholtz1D(HelmholtzOptions(k=4.0)),
                           out=out or f"runs/custom-pde-{steps}")
    return run.summary["rel_l2"]


if __name__ == "__main__":
    print(f"relative L2 error: {main():.3e}")
