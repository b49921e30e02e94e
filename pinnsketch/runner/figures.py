"""The figures of a finished run, saved into its folder: ``plots/solution.png`` and
``plots/curves.png``."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from pinnsketch.plots import curves_figure, solution_figure
from pinnsketch.problems import Problem
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.training.evaluation import evaluation_points, pde_residual_values, predict

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
    points, shape, inside = evaluation_points(problem)
    prediction = predict(model, points)
    prediction[~inside] = np.nan  # outside a shaped domain: left blank
    reference = residual = None
    if problem.has_reference:
        # One column per output; NaN outside the domain and for an output not compared.
        reference = np.full_like(prediction, np.nan)
        columns = ([problem.output_names.index(n) for n in problem.compared_outputs]
                   if prediction.ndim == 2 else slice(None))
        values = problem.reference(points[inside])
        reference[np.ix_(inside, columns) if prediction.ndim == 2 else inside] = \
            values.reshape(len(values), -1) if prediction.ndim == 2 else values
    else:  # a system's equations: the norm of their residuals per point
        residual = pde_residual_values(problem, model, points)
        residual = np.linalg.norm(residual.reshape(len(points), -1), axis=1)
    rel_l2 = metrics[-1].get("rel_l2") if metrics else None
    folder.save_figure("solution", solution_figure(
        points, shape, problem.input_names, prediction, reference=reference, residual=residual,
        evolution=problem.domain.time is not None, problem=name, rel_l2=rel_l2,
        outputs=problem.output_names))
    folder.save_figure("curves", curves_figure(metrics, problem=name))
