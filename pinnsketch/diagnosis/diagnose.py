"""Diagnose a monitored run: rules over half-overlapping windows, persistent hits as findings."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from pinnsketch.diagnosis.findings import SOURCES, TITLES, Finding, Thresholds
from pinnsketch.diagnosis.rules import (Candidate, RunView, conflict, imbalance, layer_scale,
                                        rank_collapse, stagnation, trivial_solution,
                                        vanishing_overall, windows)
from pinnsketch.diagnosis.run_rules import (causality_violation, ill_conditioning,
                                            optimizer_stall, second_order_phase,
                                            spectral_bias)

__all__ = ["diagnose"]


def diagnose(history, weights: Mapping[str, float] | None = None,
             thresholds: Thresholds = Thresholds(), *,
             metrics: Sequence[Mapping[str, Any]] = (),
             summary: Mapping[str, Any] | None = None, causal_chunks: int = 0) -> list[Finding]:
    """Named findings of a monitored run.

    Args:
        history: a :class:`pinnsketch.monitor.MonitorHistory`.
        weights: the run's loss weights (``train.weights``) for terms whose weight the
            history did not record; unnamed terms weigh 1.
        thresholds: the decision thresholds.
        metrics, summary: the run's evaluation records and ``summary.json``, for the
            findings of :mod:`pinnsketch.diagnosis.run_rules` (none without them).
        causal_chunks: the run's ``train.causal.chunks`` (0: off), for the causal remedy.

    Returns:
        Findings in the order of :data:`TITLES` (then by first step); empty for a healthy
        run or too short a history. A window finding the run got past (its loss fell 1 /
        ``thresholds.unsolved``-fold after it) is not one.
    """
    n = len(history.steps)
    from_record = causality_violation(metrics, causal_chunks, thresholds)
    from_record += optimizer_stall(summary or {}, thresholds)
    from_record += ill_conditioning(metrics, summary or {}, thresholds)
    from_record += spectral_bias(metrics, thresholds)
    if n < thresholds.min_rows:
        return from_record
    run = RunView(history, weights or {})
    spans = windows(n, thresholds.min_rows)
    hits: dict[tuple[str, str], list[tuple[int, Candidate]]] = {}
    for w, (lo, hi) in enumerate(spans):
        sl = slice(lo, hi)
        # Peak of each layer's weighted gradient norm up to (and including) the window start.
        peak = np.array([np.nanmax(x[:lo + 1]) if np.isfinite(x[:lo + 1]).any() else np.nan
                         for x in run.total_norm_layer])
        candidates = (imbalance(run, sl, thresholds) + trivial_solution(run, sl, thresholds)
                      + layer_scale(run, sl, thresholds)
                      + vanishing_overall(run, sl, thresholds)
                      + stagnation(run, sl, thresholds, peak) + conflict(run, sl, thresholds)
                      + rank_collapse(run, sl, thresholds, slice(0, max(lo, 1))))
        for cand in candidates:
            hits.setdefault((cand.kind, cand.term), []).append((w, cand))
    findings = []
    for (kind, term), found in hits.items():
        for group in _consecutive(found):
            if len(group) < 2:
                continue  # a single window is a transient, not a finding
            lo, hi = spans[group[0][0]][0], spans[group[-1][0]][1]
            if run.got_past(term, hi, thresholds):
                continue
            w_best, best = max(group, key=lambda wc: (wc[1].priority, wc[1].score))
            findings.append(Finding(kind, run.steps(lo, hi), best.layer, term,
                                    {k: float(v) for k, v in best.evidence.items()},
                                    best.message, best.suggestion, best.layers or (best.layer,),
                                    run.steps(*spans[w_best]), best.remedy, SOURCES[kind]))
    findings = [_runnable(f, summary or {}) for f in findings] + from_record
    order = list(TITLES)
    findings.sort(key=lambda f: (order.index(f.kind), f.steps[0]))
    return findings


def _consecutive(found: list[tuple[int, Candidate]]) -> list[list[tuple[int, Candidate]]]:
    """Split (window index, candidate) pairs into runs of consecutive windows."""
    groups: list[list[tuple[int, Candidate]]] = []
    for w, cand in sorted(found, key=lambda x: x[0]):
        if groups and w == groups[-1][-1][0] + 1:
            groups[-1].append((w, cand))
        else:
            groups.append([(w, cand)])
    return groups


def _runnable(finding: Finding, summary: Mapping[str, Any]) -> Finding:
    """The finding with a second-order phase in its remedy made one this run can take
    (the method its memory allows, and iterations where the run had none)."""
    if not any(o.startswith("train.quasi_newton=") for o in finding.remedy) or not summary:
        return finding
    rest = tuple(o for o in finding.remedy if not o.startswith("train.quasi_newton="))
    return dataclasses.replace(finding, remedy=second_order_phase(summary) + rest)
