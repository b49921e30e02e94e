"""The diagnosis as Markdown (``diagnosis.md``) and as data (``diagnosis.json``)."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from pinnsketch.diagnosis.findings import TITLES, Finding, Thresholds

__all__ = ["render_report", "report_data"]


def report_data(findings: Sequence[Finding], monitor: Mapping[str, Any]) -> dict[str, Any]:
    """The diagnosis as plain data (what ``diagnosis.json`` holds).

    Args:
        findings: from :func:`~pinnsketch.diagnosis.diagnose`.
        monitor: the monitor's summary (configuration, cadence and checks per phase, memory,
            bank kind per layer), passed through.

    Returns:
        ``{"findings": [{"mechanism", "title", "terms", "layers", "layer", "steps": [first,
        last], "window", "evidence", "message", "suggestion", "remedy": ["key=value", …],
        "source"}], "monitor": monitor}``; mechanisms are keys of :data:`TITLES`; an
        evidence number that is not finite (undefined) is None.
    """
    records = [{"mechanism": f.kind, "title": TITLES[f.kind], "terms": f.term.split("|"),
                "layers": list(f.layers or (f.layer,)), "layer": f.layer,
                "steps": list(f.steps), "window": list(f.window),
                "evidence": {k: v if math.isfinite(v) else None for k, v in f.evidence.items()},
                "message": f.message, "suggestion": f.suggestion, "remedy": list(f.remedy),
                "source": f.source} for f in findings]
    return {"findings": records, "monitor": dict(monitor)}


def render_report(findings: Sequence[Finding], history, *, title: str,
                  monitor_config: Mapping[str, Any], weights: Mapping[str, float],
                  monitor_summary: Mapping[str, Any] | None = None,
                  metrics: Sequence[Mapping[str, Any]] = (), figures: Sequence[str] = (),
                  thresholds: Thresholds = Thresholds()) -> str:
    """The diagnosis as Markdown: findings, final statistics, the monitor's state (with
    ``monitor_summary``), figures, thresholds."""
    cfg = monitor_config
    n = len(history.steps)
    lines = [f"# Diagnosis: {title}", ""]
    span = f"steps {history.steps[0]}–{history.steps[-1]}" if n else "no checks"
    shapes = ", ".join(f"{ly} {m}×{k}" for ly, (m, k) in history.shapes.items())
    qn_every = cfg.get("quasi_newton_every", 0)
    lines.append(f"Monitor: {cfg['backend']}, rank {cfg['rank']}, β = {cfg['beta']}, every "
                 f"{cfg['every']} Adam steps and "
                 + (f"every {qn_every} evaluations after Adam" if qn_every else
                    "not after Adam") +
                 f"; {span} in {n} history rows (stride {history.stride} checks). Terms {', '.join(history.terms)} (weights "
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
        lines.append("No findings: none of " + ", ".join(t.lower() for t in TITLES.values())
                     + " persisted over two windows.")
    for i, f in enumerate(findings, 1):
        lines += [f"### {i}. {TITLES[f.kind]}: term `{f.term}`, layer `{f.layer}`, "
                  f"steps {f.steps[0]}–{f.steps[1]}", "",
                  f"- **Evidence** (steps {f.window[0]}–{f.window[1]}): {f.message}",
                  f"- **Numbers**: " + ", ".join(f"{k} = {v:.3g}" for k, v in f.evidence.items()),
                  f"- **Suggestion**: {f.suggestion}",
                  f"- **Remedy**: " + (", ".join(f"`{r}`" for r in f.remedy) or "none in config"),
                  f"- **Source**: {f.source}", ""]
    if n:
        lines += ["", "## Statistics over the last history row", "",
                  "| layer | term | ‖G‖ | ‖Ḡ‖ | SNR | eff. rank | drift ° | λ̂ |",
                  "|---|---|---|---|---|---|---|---|"]
        for ly in history.layers:
            for t in history.terms:
                lam = (history.series("imbalance", ly, t)[-1]
                       if history.has("imbalance", ly, t) else float("nan"))
                cells = [history.series(s, ly, t)[-1] for s in ("norm", "ema_norm", "snr",
                                                                 "erank", "drift")] + [lam]
                lines.append(f"| {ly} | {t} | " + " | ".join(f"{c:.3g}" for c in cells) + " |")
    lines += _curvature_lines(metrics) + _spectrum_lines(metrics)
    if monitor_summary:
        lines += _monitor_lines(monitor_summary)
    if figures:
        lines += ["", "## Figures", ""] + [f"- [{Path(p).name}]({p})" for p in figures]
    lines += ["", "## Thresholds", "", "| name | value |", "|---|---|"]
    lines += [f"| {f.name} | {getattr(thresholds, f.name):g} |"
              for f in dataclasses.fields(thresholds)]
    return "\n".join(lines) + "\n"


def _curvature_lines(metrics: Sequence[Mapping[str, Any]]) -> list[str]:
    """λ_max of each term's Hessian at the first and last evaluation that recorded it
    (``monitor.curvature_steps``): evidence only, no finding is drawn from it yet."""
    records = [m for m in metrics if "hessian_top" in m]
    if not records:
        return []
    first, last = records[0], records[-1]
    lines = ["", "## Curvature (Hessian top eigenvalue per term, Lanczos)", "",
             f"| term | λ_max at step {first['step']} | λ_max at step {last['step']} |",
             "|---|---|---|"]
    lines += [f"| {t} | {first['hessian_top'][t][0]:.3g} | {last['hessian_top'][t][0]:.3g} |"
              for t in last["hessian_top"]]
    return lines


def _spectrum_lines(metrics: Sequence[Mapping[str, Any]]) -> list[str]:
    """The pde residual's and the last hidden features' energy shares by wavenumber band at
    the first and last evaluation (monitored runs; the spectral-bias evidence)."""
    records = [m for m in metrics if "residual_bands" in m]
    if not records:
        return []
    lines = ["", "## Spectra (share of the energy per octave of wavenumber, lowest first, on "
                 "a regular grid)", "", "| step | pde residual | last hidden features |",
             "|---|---|---|"]
    shares = lambda bands: ", ".join(f"{b:.3g}" for b in bands) if bands else "—"
    lines += [f"| {m['step']} | {shares(m['residual_bands'])} | "
              f"{shares(m.get('feature_bands'))} |" for m in (records[0], records[-1])]
    return lines


def _monitor_lines(summary: Mapping[str, Any]) -> list[str]:
    memory = summary["memory_bytes"]
    checks = ", ".join(f"{phase} {count}" for phase, count in summary["checks"].items())
    lines = ["", "## Monitor state", "",
             f"Checks per phase: {checks or 'none'}. Memory {memory['total']} bytes: EMA state "
             f"{memory['banks']} (+ test matrices {memory['tests']}) where keeping every "
             f"Ḡ exactly takes {memory['exact_state']}; leading subspaces "
             f"{memory['subspaces']}, history {memory['history']}.", "",
             "| layer | EMA gradient kept | numbers per term | exact Ḡ |", "|---|---|---|---|"]
    lines += [f"| {ly} | {v['bank']} | {v['numbers_per_pair']} | {v['exact_numbers_per_pair']} |"
              for ly, v in summary["layers"].items()]
    return lines
