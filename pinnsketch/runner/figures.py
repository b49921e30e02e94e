"""The figures of a finished run, saved into its folder: ``plots/solution.png`` and
``plots/curves.png``."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from pinnsketch.plots import curves_figure, solution_figure
from pinnsketch.problems import Problem
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.training.evaluation import pde_residual_values, predict

__all__ = ["write_run_figures"]


def write_run_figures(folder: RunDir, problem: Problem, model: torch.nn.Module,
                      metrics: Sequence[Mapping[str, Any]], *, name: str) -> None:
    """Draw the solution (against the reference, or with the PDE residual when there is
    none) and the training curves into ``folder/plots``.

    Args:
        folder: the run folder.
        problem, model: what was trained.
        metrics: the run's evaluation records.
        name: the problem's name for the titles.
    """
    points, shape = problem.plot_grid()
    prediction = predict(model, points)
    reference = problem.reference(points) if problem.has_reference else None
    residual = None if reference is not None else pde_residual_values(problem, model, points)
    rel_l2 = metrics[-1].get("rel_l2") if metrics else None
    folder.save_figure("solution", solution_figure(
        points, shape, problem.input_names, prediction, reference=reference, residual=residual,
        evolution=problem.domain.time is not None, problem=name, rel_l2=rel_l2))
    folder.save_figure("curves", curves_figure(metrics, problem=name))
