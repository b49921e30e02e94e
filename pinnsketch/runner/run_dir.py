"""The run folder: resolved config, metrics stream, atomic checkpoint, summary, plots.

Layout::

    RUN_DIR/config.yaml      resolved configuration (reloadable with load_config)
    RUN_DIR/metrics.jsonl    one JSON record per evaluation, appended and flushed
    RUN_DIR/checkpoint.pt    trainer state, replaced atomically (temp file + rename)
    RUN_DIR/summary.json     final figures and status, replaced atomically
    RUN_DIR/problem.json     where the problem's class came from (to reopen the run)
    RUN_DIR/diagnosis.md     the monitor's diagnosis (monitored runs)
    RUN_DIR/plots/           figures

Files get the permissions of the user's umask, like any other file they write (a shared
cluster's colleagues can read them), although they are written through private temp files.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from pinnsketch.config import RunConfig, config_to_dict

__all__ = ["RunDir"]


def _umask_mode() -> int:
    """0o666 less the process umask (read without changing it for other threads: os.umask
    must set a value to return the old one, so set it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


class RunDir:
    """Reads and writes the files of one run folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.yaml")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    checkpoint_path = property(lambda self: self.path / "checkpoint.pt")
    summary_path = property(lambda self: self.path / "summary.json")
    problem_path = property(lambda self: self.path / "problem.json")
    diagnosis_path = property(lambda self: self.path / "diagnosis.md")
    diagnosis_json_path = property(lambda self: self.path / "diagnosis.json")
    plots_path = property(lambda self: self.path / "plots")

    def holds_run(self) -> bool:
        return self.config_path.exists() or self.checkpoint_path.exists()

    def create(self, config: RunConfig, problem_source: dict[str, Any]) -> None:
        """Make the folder and write the resolved config and the problem's origin."""
        self.path.mkdir(parents=True, exist_ok=True)
        self._atomic_write(self.config_path,
                           yaml.safe_dump(config_to_dict(config), sort_keys=False).encode())
        self._atomic_write(self.problem_path, (json.dumps(problem_source, indent=2) + "\n").encode())

    def read_problem_source(self) -> dict[str, Any] | None:
        return json.loads(self.problem_path.read_text()) if self.problem_path.exists() else None

    def write_text(self, name: str, text: str) -> Path:
        """Write ``RUN_DIR/name`` atomically; returns its path."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        self._atomic_write(target, text.encode())
        return target

    def save_figure(self, name: str, figure) -> Path:
        """Save a matplotlib Figure as ``plots/<name>.png``; returns its path."""
        self.plots_path.mkdir(parents=True, exist_ok=True)
        target = self.plots_path / f"{name}.png"
        figure.savefig(target, dpi=110)
        return target

    # -- metrics ------------------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line]

    def truncate_metrics(self, last_step: int) -> None:
        """Drop records after ``last_step`` (used on resume, so the stream has no repeats)."""
        kept = [r for r in self.read_metrics() if r["step"] <= last_step]
        self._atomic_write(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept).encode())

    # -- checkpoint and summary ----------------------------------------------------------------
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".checkpoint-", suffix=".tmp")
        os.close(fd)
        try:
            torch.save(state, tmp)
            os.chmod(tmp, _umask_mode())
            os.replace(tmp, self.checkpoint_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def load_checkpoint(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """The checkpoint dict (it holds numpy and Python objects besides tensors, written by
        this library: ``weights_only=False``)."""
        return torch.load(self.checkpoint_path, map_location=map_location, weights_only=False)

    def write_summary(self, summary: dict[str, Any]) -> None:
        self._atomic_write(self.summary_path, (json.dumps(summary, indent=2) + "\n").encode())

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary_path.read_text()) if self.summary_path.exists() else {}

    def _atomic_write(self, target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{target.name}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, _umask_mode())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
