"""The diagnosis as Markdown (``diagnosis.md``): findings, final statistics, thresholds."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

from pinnsketch.diagnosis.findings import TITLES, Finding, Thresholds

__all__ = ["render_report"]


def render_report(findings: Sequence[Finding], history, *, title: str,
                  monitor_config: Mapping[str, Any], weights: Mapping[str, float],
                  metrics: Sequence[Mapping[str, Any]] = (), figures: Sequence[str] = (),
                  thresholds: Thresholds = Thresholds()) -> str:
    """The diagnosis as Markdown: findings, final statistics, figures, thresholds."""
    cfg = monitor_config
    n = len(history.steps)
    lines = [f"# Diagnosis: {title}", ""]
    span = f"steps {history.steps[0]}–{history.steps[-1]}" if n else "no checks"
    shapes = ", ".join(f"{ly} {m}×{k}" for ly, (m, k) in history.shapes.items())
    lines.append(f"Monitor: {cfg['backend']}, rank {cfg['rank']}, β = {cfg['beta']}, every "
                 f"{cfg['every']} steps; {span} in {n} history rows (stride {history.stride} "
                 f"checks). Terms {', '.join(history.terms)} (weights "
                 f"{', '.join(f'{t}={weights.get(t, 1.0):g}' for t in history.terms)}); "
                 f"layers {shapes}.")
    final = [m for m in metrics if "rel_l2" in m]
    if final:
        lines.append(f"Last evaluation: step {final[-1]['step']}, relative L2 error "
                     f"{final[-1]['rel_l2']:.3g}.")
    lines += ["", f"## Findings ({len(findings)})", ""]
    if n < thresholds.min_rows:
        lines.append(f"No findings: only {n} history rows (at least {thresholds.min_rows} "
                     f"are needed to judge a trend).")
    elif not findings:
        lines.append("No findings: no imbalance, vanishing or exploding gradients, stagnation, "
                     "conflicting terms or rank collapse persisted over two windows.")
    for i, f in enumerate(findings, 1):
        lines += [f"### {i}. {TITLES[f.kind]}: term `{f.term}`, layer `{f.layer}`, "
                  f"steps {f.steps[0]}–{f.steps[1]}", "",
                  f"- **Evidence** (steps {f.window[0]}–{f.window[1]}): {f.message}",
                  f"- **Numbers**: " + ", ".join(f"{k} = {v:.3g}" for k, v in f.evidence.items()),
                  f"- **Suggestion**: {f.suggestion}", ""]
    if n:
        lines += ["", "## Statistics over the last history row", "",
                  "| layer | term | ‖G‖ | ‖Ḡ‖ (sketch) | SNR | eff. rank | drift ° | λ̂ |",
                  "|---|---|---|---|---|---|---|---|"]
        for ly in history.layers:
            for t in history.terms:
                lam = (history.series("imbalance", ly, t)[-1]
                       if history.has("imbalance", ly, t) else float("nan"))
                cells = [history.series(s, ly, t)[-1] for s in ("norm", "ema_norm", "snr",
                                                                 "erank", "drift")] + [lam]
                lines.append(f"| {ly} | {t} | " + " | ".join(f"{c:.3g}" for c in cells) + " |")
    if figures:
        lines += ["", "## Figures", ""] + [f"- [{Path(p).name}]({p})" for p in figures]
    lines += ["", "## Thresholds", "", "| name | value |", "|---|---|"]
    lines += [f"| {f.name} | {getattr(thresholds, f.name):g} |"
              for f in dataclasses.fields(thresholds)]
    return "\n".join(lines) + "\n"
