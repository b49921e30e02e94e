"""The monitor's report in a run folder: ``diagnosis.md``, ``diagnosis.json`` and
``plots/monitor_*.png``."""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from pinnsketch.diagnosis import Finding, Thresholds, diagnose, render_report, report_data
from pinnsketch.errors import ConfigError
from pinnsketch.monitor import SketchMonitor
from pinnsketch.plots import monitor_figures
from pinnsketch.runner.resume import saved_config
from pinnsketch.runner.run_dir import RunDir

__all__ = ["diagnose_run", "monitor_summary", "read_thresholds", "run_findings", "run_record",
           "write_report"]

log = logging.getLogger(__name__)


def write_report(run_dir: str | Path, monitor: SketchMonitor,
                 metrics: Sequence[Mapping[str, Any]] = (), *,
                 weights: Mapping[str, float] | None = None,
                 figures: bool | None = None,
                 thresholds: Thresholds = Thresholds()) -> str:
    """Diagnose ``monitor``; write ``RUN_DIR/diagnosis.md``, ``diagnosis.json`` (and the
    monitor figures).

    Args:
        run_dir: the run folder (created if missing).
        monitor: the monitor of the run.
        metrics: the run's evaluation records, for context.
        weights: loss weights where the history recorded none; default ``train.weights``
            of ``RUN_DIR/config.yaml`` (or all 1).
        figures: draw ``plots/monitor_*.png``; default ``output.plots`` of the run's config
            (or True without one).
        thresholds: the decision thresholds (:func:`read_thresholds` reads calibrated ones).

    Returns:
        The Markdown written.
    """
    folder = RunDir(run_dir)
    config = saved_config(folder) if folder.config_path.is_file() else None
    if weights is None:
        weights = dict(config.train.weights) if config is not None else {}
    if figures is None:
        figures = config.output.plots if config is not None else True
    history = monitor.history_view()
    weights = history.weights_in_force(weights)  # adaptive ones as last recorded
    findings = diagnose(history, weights, thresholds, metrics=metrics,
                        summary=folder.read_summary(),
                        causal_chunks=config.train.causal.chunks if config is not None else 0)
    paths = []
    if figures:
        for name, figure in monitor_figures(history, title=folder.path.name).items():
            paths.append(str(folder.save_figure(name, figure).relative_to(folder.path)))
    summary = monitor_summary(monitor) | {"weights": weights}  # the ones judged with
    text = render_report(findings, history, title=folder.path.name,
                         monitor_config=monitor.config_dict(), weights=weights,
                         monitor_summary=summary, metrics=metrics, figures=paths)
    folder.write_text(folder.diagnosis_path.name, text)
    data = json.dumps(report_data(findings, summary), indent=2, allow_nan=False)
    folder.write_text(folder.diagnosis_json_path.name, data + "\n")
    log.info("diagnosis: %d finding(s), written to %s", len(findings), folder.diagnosis_path)
    return text


def monitor_summary(monitor: SketchMonitor) -> dict[str, Any]:
    """The monitor's configuration, cadence and checks per phase, and memory, as plain data."""
    config, memory = monitor.config_dict(), monitor.memory()
    return {"backend": config["backend"], "rank": config["rank"], "beta": config["beta"],
            "cadence": {"adam": {"every_steps": config["every"]},
                        "after_adam": {"every_evaluations": config["quasi_newton_every"]}},
            "checks": dict(monitor.checks_by_phase),
            "memory_bytes": {k: v for k, v in memory.items() if k != "layers"},
            "layers": memory["layers"]}


def diagnose_run(run_dir: str | Path, thresholds: Thresholds = Thresholds()) -> str:
    """Rebuild the monitor of a run from its checkpoint, rewrite its report under
    ``thresholds``, return it.

    Raises:
        ConfigError: not a run folder, or the run was not monitored.
    """
    folder = RunDir(run_dir)
    return write_report(folder.path, _saved_monitor(folder), folder.read_metrics(),
                        thresholds=thresholds)


def read_thresholds(path: str | Path) -> Thresholds:
    """The thresholds of a calibration record (``benchmarks/diagnosis_suite.py calibrate``
    writes one: ``{"mechanisms": {name: {"fields": [...], "value": [...] or null}}}``);
    fields the record does not set, or sets to null (no feasible value), keep their
    defaults.

    Raises:
        ConfigError: the file is missing, not such a record, or names a field
            :class:`Thresholds` does not have.
    """
    path = Path(path)
    try:
        rows = json.loads(path.read_text())["mechanisms"].values()
        changes = {field: float(value) for row in rows if row["value"] is not None
                   for field, value in zip(row["fields"], row["value"], strict=True)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"--thresholds {path}: not a calibration record of the diagnosis "
                          f"suite ({error!r})") from None
    known = {f.name for f in dataclasses.fields(Thresholds)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ConfigError(f"--thresholds {path}: unknown threshold(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(sorted(known))}")
    return dataclasses.replace(Thresholds(), **changes)


def run_findings(run_dir: str | Path, thresholds: Thresholds = Thresholds()) -> list[Finding]:
    """The findings of a monitored run folder under ``thresholds``, written nowhere (to
    judge other thresholds on finished runs: the diagnosis suite's calibration).

    Raises:
        ConfigError: not a run folder, or the run was not monitored.
    """
    return diagnose(thresholds=thresholds, **run_record(run_dir))


def run_record(run_dir: str | Path) -> dict[str, Any]:
    """What :func:`pinnsketch.diagnosis.diagnose` reads of a monitored run folder, as its
    keyword arguments (``history``, ``weights``, ``metrics``, ``summary``,
    ``causal_chunks``): read once, diagnosed under many thresholds.

    Raises:
        ConfigError: not a run folder, or the run was not monitored.
    """
    folder = RunDir(run_dir)
    history = _saved_monitor(folder).history_view()
    config = saved_config(folder)
    return {"history": history,
            "weights": history.weights_in_force(dict(config.train.weights)),
            "metrics": folder.read_metrics(), "summary": folder.read_summary(),
            "causal_chunks": config.train.causal.chunks}


def _saved_monitor(folder: RunDir) -> SketchMonitor:
    run_dir = folder.path
    windows = sorted(p.name for p in folder.path.glob("window-*") if p.is_dir())
    if not folder.checkpoint_path.is_file() and windows:
        raise ConfigError(f"{run_dir}: a sequence-to-sequence run; each window is diagnosed "
                          f"on its own (pinnsketch diagnose {folder.path / windows[0]}, ...)")
    if not folder.checkpoint_path.is_file():
        raise ConfigError(f"{run_dir}: no checkpoint.pt (not a run folder)")
    state = folder.load_checkpoint()["trainer"].get("monitor")
    if state is None:
        raise ConfigError(f"{run_dir}: the run was not monitored (no monitor state in its "
                          f"checkpoint; train with monitor.enabled: true)")
    return SketchMonitor.from_state_dict(state)
