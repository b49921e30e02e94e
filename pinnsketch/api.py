"""The public entry points, gathered: train, check, load a problem, reopen a run."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pinnsketch.config import RunConfig
from pinnsketch.problems import Problem
from pinnsketch.runner.run import Run, load_run
from pinnsketch.runner.session import as_config, train
from pinnsketch.training.checks import build_problem, check_config

__all__ = ["Run", "check_config", "load_problem", "load_run", "train"]


def load_problem(path_or_config: RunConfig | Mapping[str, Any] | str | Path) -> Problem:
    """The problem described by a YAML file, a mapping or a :class:`RunConfig` (built and
    checked; ``.reference`` is its reference solution, or None)."""
    return build_problem(as_config(path_or_config))
