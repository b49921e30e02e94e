"""A finished (or reopened) run: its config, problem, network and summary; :func:`load_run`."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pinnsketch.config import DTYPES, RunConfig
from pinnsketch.errors import ConfigError
from pinnsketch.model import PINN, StitchedModel
from pinnsketch.problems import Problem, TimeWindow, window_edges
from pinnsketch.runner.resume import saved_config
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.training.build import build_model
from pinnsketch.training.checks import build_problem
from pinnsketch.training.evaluation import predict

__all__ = ["Run", "load_run"]


@dataclasses.dataclass
class Run:
    """A trained (or loaded) run.

    Attributes:
        path: the run folder.
        config: its configuration.
        problem: the problem (identified coefficients, if any, as trained).
        model: the network, on the device and in the dtype it trained in (a
            sequence-to-sequence run: its windows' networks, stitched in time).
        summary: what ``summary.json`` holds (``rel_l2`` is None without a reference).
    """

    path: Path
    config: RunConfig
    problem: Problem
    model: PINN | StitchedModel
    summary: dict[str, Any]

    def predict(self, points: np.ndarray) -> np.ndarray:
        """u_θ at ``points`` ``(N, d)`` (columns as in ``problem.input_names``): ``(N,)``."""
        points = np.asarray(points, dtype=np.float64)
        names = self.problem.input_names
        if points.ndim != 2 or points.shape[1] != len(names):
            raise ValueError(f"points must have shape (N, {len(names)}) with columns "
                             f"{names}, got {points.shape}")
        return predict(self.model, points)

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """The evaluation records of ``metrics.jsonl``, in step order."""
        return RunDir(self.path).read_metrics()


def load_run(run_dir: str | Path, *, problem: Problem | None = None) -> Run:
    """Reopen a run folder written by :func:`pinnsketch.train` (on the CPU).

    Args:
        run_dir: the folder.
        problem: the problem object the run trained on; needed when its class cannot be
            imported by name (defined in a script's ``__main__``), optional otherwise.

    Raises:
        ConfigError: not a run folder, or the problem cannot be rebuilt without the object.
    """
    folder = RunDir(run_dir)
    if not folder.config_path.is_file():
        raise ConfigError(f"{run_dir}: not a run folder (needs config.yaml and checkpoint.pt)")
    config = saved_config(folder)
    stitched = config.train.time_marching.networks == "per_window"  # windows hold checkpoints
    if not (stitched or folder.checkpoint_path.is_file()):
        raise ConfigError(f"{run_dir}: not a run folder (needs config.yaml and checkpoint.pt)")
    source = folder.read_problem_source() or {}
    if source.get("class") == TimeWindow.__qualname__ and problem is None:
        raise ConfigError(f"{run_dir}: one window of a sequence-to-sequence run; load the "
                          f"run folder above it (load_run({str(folder.path.parent)!r}))")
    if problem is None:
        if config.problem.type is None:
            where = source.get("file") or "an unknown file"
            raise ConfigError(f"{run_dir}: the problem class {source.get('class', '?')!r} "
                              f"in {where} was defined in a script's __main__; pass it: "
                              f"load_run({str(run_dir)!r}, problem={source.get('class', 'P')}())")
        if source.get("file"):  # a "module:Class" problem is found where it was found then
            config = dataclasses.replace(config, base_dir=str(Path(source["file"]).parent))
        problem = build_problem(config)
    else:
        problem = build_problem(dataclasses.replace(
            config, problem=dataclasses.replace(config.problem, options={})), problem)
    if stitched:
        return _load_windows(folder, config, problem)
    model = build_model(config, problem).to(DTYPES[config.train.dtype])
    state = folder.load_checkpoint()["trainer"]
    model.load_state_dict(state["model"])
    with torch.no_grad():
        for coefficient, saved in zip(problem.parameters(), state["extra_parameters"]):
            coefficient.data = saved.to(DTYPES[config.train.dtype])
    return Run(folder.path, config, problem, model, folder.read_summary())


def _load_windows(folder: RunDir, config: RunConfig, problem: Problem) -> Run:
    """A sequence-to-sequence run: its windows' networks stitched in time (those trained)."""
    edges = window_edges(problem.domain.time, config.train.time_marching.windows)
    models = []
    for k in range(len(edges) - 1):
        sub = folder.path / f"window-{k}"
        if not RunDir(sub).checkpoint_path.is_file():
            break
        models.append(load_run(sub, problem=TimeWindow(problem, edges[k], edges[k + 1])).model)
    if not models:
        raise ConfigError(f"{folder.path}: no window of this sequence-to-sequence run has a "
                          f"checkpoint yet")
    return Run(folder.path, config, problem, StitchedModel(models, edges[:len(models) + 1]),
               folder.read_summary())
