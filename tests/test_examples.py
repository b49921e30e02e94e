"""Examples run at tiny size and do what they claim."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

from conftest import RESIDUAL_ATOL_F64

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
import custom_pde  # noqa: E402


def test_custom_pde_exact_solution_has_zero_residual():
    problem = custom_pde.Helmholtz1D()
    x = torch.linspace(0, 1, 101, dtype=torch.float64)[:, None].requires_grad_(True)
    exact = lambda p: torch.sin(problem.options.m * math.pi * p[:, 0])
    assert problem.pde_residual(exact, x).abs().max() < RESIDUAL_ATOL_F64 * 100  # f ~ 40


def test_custom_pde_trains_from_yaml(tmp_path):
    # 300 Adam + 500 L-BFGS iterations on a 1D problem: the error must fall far below
    # that of the untrained network (O(1)).
    error = custom_pde.main(steps=300, out=tmp_path / "run")
    assert error < 1e-2


def test_custom_pde_yaml_form_is_the_same_problem(tmp_path):
    """The YAML form names the same class and options; run at tiny size from the repo root."""
    import pinnsketch

    config = pinnsketch.load_config(EXAMPLES / "custom_pde.yaml",
                                    ["train.adam_steps=5", "train.lbfgs_steps=0"])
    problem = pinnsketch.load_problem(config)
    assert type(problem).__name__ == "Helmholtz1D" and problem.options.k == 4.0
    run = pinnsketch.train(config, out=tmp_path / "yaml")
    assert run.summary["steps"] == 5 and run.summary["rel_l2"] > 0
