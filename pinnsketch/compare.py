"""``pinnsketch compare``: the same run with exact and sketched data-term gradients.

Every mode trains from the same seed, so the same initial network, observations and
collocation points; only how the ``data`` term's weight gradients are formed differs.
Writes ``comparison.png`` (residual loss, data loss, rel L2 and — for identification —
coefficient errors against step, all modes side by side), ``comparison.md`` and
``comparison.json`` (final errors, wall time, saved-activation bytes of the data term).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pinnsketch.config import RunConfig, TermGradientConfig
from pinnsketch.errors import ConfigError
from pinnsketch.memory import saved_tensor_bytes
from pinnsketch.plots import comparison_figure
from pinnsketch.runner.parallel import in_processes
from pinnsketch.runner.session import train
from pinnsketch.training.build import build_trainer

__all__ = ["MODES", "compare", "parse_modes", "data_term_memory"]

# mode name -> (gradient, variant) of the data term
MODES: dict[str, tuple[str, str]] = {
    "exact": ("exact", "batch"),
    "sketched": ("sketched", "batch"),
    "sketched-batch": ("sketched", "batch"),
    "sketched-ema": ("sketched", "ema"),
}


def parse_modes(modes: str, ranks: str | None) -> list[tuple[str, int | None]]:
    """``"exact,sketched"`` and ``"2,8"`` → [("exact", None), ("sketched", 2), …]."""
    names = [m.strip() for m in modes.split(",") if m.strip()]
    for name in names:
        if name not in MODES:
            raise ConfigError(f"--modes: got {name!r} (allowed: {', '.join(MODES)})")
    try:
        rank_list = [int(r) for r in ranks.split(",")] if ranks else [None]
    except ValueError:
        raise ConfigError(f"--ranks: got {ranks!r}, expected comma-separated integers") from None
    if any(r is not None and r < 1 for r in rank_list):
        raise ConfigError(f"--ranks: got {ranks!r}, ranks must be >= 1")
    out = []
    for name in names:
        for rank in ([None] if MODES[name][0] == "exact" else rank_list):
            out.append((name, rank))
    return out


def _mode_config(config: RunConfig, name: str, rank: int | None) -> RunConfig:
    gradient, variant = MODES[name]
    base = config.terms.get("data", TermGradientConfig())
    data = dataclasses.replace(base, gradient=gradient, variant=variant,
                               rank=rank if rank is not None else base.rank)
    return dataclasses.replace(config, terms={**config.terms, "data": data})


def data_term_memory(config: RunConfig) -> tuple[int, int]:
    """What the data term's gradient costs in memory under ``config``, in bytes.

    Returns:
        ``(saved, state)``: ``saved`` is what autograd keeps for the backward of the data
        loss, counted with ``torch.autograd.graph.saved_tensors_hooks`` over one forward
        (distinct storages only, so views of one tensor count once); ``state`` is what the
        sketched gradient keeps between steps (the ``ema`` sketches and their test matrices;
        0 for exact and ``batch``). Both depend on shapes and mode, not on the weights, so
        a freshly built trainer measures them.
    """
    trainer = build_trainer(config)
    sketched = trainer.sketched_data
    forward = trainer.model if sketched is None else trainer._sketched_forward
    saved = saved_tensor_bytes(lambda: trainer.problem.residuals(
        forward, {"data": trainer.batch["data"]})["data"].square().mean())
    return saved, (0 if sketched is None else sketched.nbytes())


def compare(config: RunConfig, modes: list[tuple[str, int | None]], out: Path, *,
            jobs: int = 1) -> list[dict[str, Any]]:
    """Train every mode into ``out/<mode>[-r<rank>]`` and write the comparison files.

    Args:
        config: a validated configuration with observations (a ``data`` term).
        modes: ``(name, rank)`` pairs from :func:`parse_modes`.
        out: folder for the runs and ``comparison.{png,md,json}``.
        jobs: modes trained at once, each in its own process with
            ``max(1, cpu_count // jobs)`` torch threads and no progress bar. Wall times of
            concurrent modes include their contention for the cores: compare them only
            within one ``jobs`` setting.

    Returns:
        One row per mode, in the order of ``modes``: final errors and losses, steps, stop
        reasons, wall time, saved-tensor bytes of the data term, and the metrics history.
    """
    if config.problem.observations.count == 0:
        raise ConfigError("problem.observations.count: got 0; compare needs a data term")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs: got {jobs!r}, expected an integer >= 1")
    out = Path(out)
    if jobs > 1:  # progress bars of concurrent processes would interleave
        config = dataclasses.replace(config, output=dataclasses.replace(config.output,
                                                                        progress=False))
    rows = [None] * len(modes)
    for index, row in in_processes(_train_mode, [(config, name, rank, out)
                                                 for name, rank in modes], jobs):
        rows[index] = row
    _write_tables(rows, out)
    _plot(rows, out / "comparison.png")
    return rows


def _train_mode(config: RunConfig, name: str, rank: int | None,
                out: Path) -> dict[str, Any]:
    """Train one mode into ``out/<label>`` and return its comparison row."""
    label = name if rank is None else f"{name}-r{rank}"
    mode_config = _mode_config(config, name, rank)
    labelled = dataclasses.replace(mode_config, output=dataclasses.replace(
        mode_config.output, label=f"{mode_config.problem.type} {label}"))
    run = train(labelled, out=out / label)
    summary = run.summary
    return {"mode": label, "rel_l2": summary["rel_l2"],
            "pde_loss": summary["final_losses"].get("pde"),
            "data_loss": summary["final_losses"].get("data"),
            **{k: v for k, v in summary.items() if k.startswith("lambda")},
            "steps": summary["steps"],
            "lbfgs_stop": summary["stop_reasons"].get(config.train.quasi_newton, ""),
            "wall_s": summary["wall_s"],
            **dict(zip(("saved_bytes", "state_bytes"), data_term_memory(mode_config))),
            "metrics": run.metrics}


def _write_tables(rows: list[dict[str, Any]], out: Path) -> None:
    table = [{k: v for k, v in row.items() if k != "metrics"} for row in rows]
    (out / "comparison.json").write_text(json.dumps(table, indent=2) + "\n")
    keys = list(table[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in table:
        cells = [f"{v:.3e}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    (out / "comparison.md").write_text("\n".join(lines) + "\n")


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    comparison_figure(rows, title=f"{path.parent.name}: exact and sketched data gradients"
                      ).savefig(path, dpi=110)
