"""Sequence-to-sequence time marching (Krishnapriyan, Gholami, Zhe, Kirby & Mahoney 2021):
``train.time_marching: {windows: K, networks: per_window}``.

The time interval is cut into K equal windows; window k is an ordinary run of a
:class:`~pinnsketch.problems.TimeWindow` (the whole schedule, its own checkpoint, metrics,
summary and monitor report) in the folder ``window-k`` of the run folder, and its initial
condition is window k − 1's network at t_k. The run folder holds the config, and a summary
whose ``rel_l2`` is that of the stitched solution (each grid point evaluated by the network
of its window) on the problem's reference grid. Resuming continues the first unfinished
window and trains the rest; finished windows are read, not retrained.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pinnsketch.config import RunConfig
from pinnsketch.errors import NonFiniteLoss, RunInterrupted
from pinnsketch.model import StitchedModel
from pinnsketch.problems import Problem, TimeWindow, problem_source, window_edges
from pinnsketch.runner.resume import check_folder
from pinnsketch.runner.run import Run
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.training.evaluation import evaluation_points, predict, relative_l2

__all__ = ["train_windows", "window_config"]

TrainOne = Callable[..., Run]


def window_config(config: RunConfig, k: int) -> RunConfig:
    """The run of window k: the same sections, time marching off, the problem given as an
    object (the window), labelled ``window k+1/K`` on its progress bar."""
    train = dataclasses.replace(config.train, time_marching=dataclasses.replace(
        config.train.time_marching, windows=0, networks="shared"))
    problem = dataclasses.replace(config.problem, type=None, options={})
    label = f"{config.output.label or config.problem.type or 'window'} " \
            f"{k + 1}/{config.train.time_marching.windows}"
    output = dataclasses.replace(config.output, dir=None, label=label)
    return dataclasses.replace(config, train=train, problem=problem, output=output)


def train_windows(config: RunConfig, problem: Problem, folder: RunDir,
                  resume: str | Path | None, train_one: TrainOne) -> Run:
    """Train the windows in turn into ``folder`` (see the module docstring).

    Args:
        config: the checked configuration (``networks: per_window``).
        problem: the built, checked problem over the whole interval.
        folder: the run folder.
        resume: the folder again when continuing it, else None.
        train_one: :func:`pinnsketch.train` (passed in: it is the layer above).

    Raises:
        ConfigError: the folder cannot take the run (as for any run).
        RunInterrupted, NonFiniteLoss: from the window that stopped; the summary says so.
    """
    check_folder(folder, config, resume)
    folder.create(config, problem_source(problem))
    edges = window_edges(problem.domain.time, config.train.time_marching.windows)
    runs: list[Run] = []
    status = "failed"
    try:
        for k in range(len(edges) - 1):
            sub = folder.path / f"window-{k}"
            initial = runs[-1].model if runs else None
            window = TimeWindow(problem, edges[k], edges[k + 1], initial=initial)
            again = sub if (resume is not None and RunDir(sub).checkpoint_path.is_file()) else None
            runs.append(train_one(window_config(config, k), problem=window, out=sub,
                                  resume=again))
            runs[-1].model.requires_grad_(False)
        status = "completed"
    except RunInterrupted as err:
        status = "interrupted"
        # Resume is of the whole sequence: name this folder, and what it can resume from.
        saved = err.checkpoint_saved or bool(runs) or RunDir(sub).checkpoint_path.is_file()
        raise RunInterrupted(folder.path, saved, err.step) from err
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except NonFiniteLoss:
        status = "diverged"
        raise
    finally:
        model = StitchedModel([r.model for r in runs], edges[:len(runs) + 1]) if runs else None
        folder.write_summary(_summary(config, problem, model, runs, status, len(edges) - 1))
    return Run(folder.path, config, problem, model, folder.read_summary())


def _summary(config: RunConfig, problem: Problem, model: StitchedModel | None,
             runs: list[Run], status: str, windows: int) -> dict[str, Any]:
    rel_l2 = None
    if model is not None and status == "completed" and problem.has_reference:
        grid, _, inside = evaluation_points(problem)
        rel_l2 = relative_l2(predict(model, grid[inside]), problem.reference(grid[inside]))
    per_window = [{"t": list(r.problem.domain.time), **{key: r.summary.get(key) for key in (
        "status", "rel_l2", "steps", "wall_s", "stop_reasons", "final_losses")}} for r in runs]
    return {"status": status, "problem": config.problem.type or type(problem).__name__,
            "rel_l2": rel_l2, "time_marching": "per_window", "windows": windows,
            "windows_trained": len(runs), "per_window": per_window,
            "stop_reasons": {f"window-{k} {phase}": why for k, w in enumerate(per_window)
                             for phase, why in (w["stop_reasons"] or {}).items()},
            "steps": sum(w["steps"] or 0 for w in per_window),
            "wall_s": float(np.sum([w["wall_s"] or 0.0 for w in per_window])),
            "seed": config.train.seed, "dtype": config.train.dtype}
