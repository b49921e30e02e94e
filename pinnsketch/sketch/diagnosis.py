"""Stall diagnosis: named findings from a monitor's history, and the run's diagnosis.md.

The history (:class:`pinnsketch.sketch.statistics.MonitorHistory`) is cut into windows of a
sixth of its rows (at least 8), each half-overlapping the next. A check fires on a window; a
finding is reported when it fires on at least two consecutive windows (about a quarter of the
run), with the step range they cover and the term — and, from the window where it is
strongest, the layer, the evidence numbers and a suggestion.

Terms are compared through their *unweighted* gradients (what the monitor receives) and the
run's loss weights w_τ (``train.weights``). Notation: N_τ = network-wide ‖∇_W L_τ‖ (weight
matrices only); the *driver* is the term with the largest w_τ·N_τ (it steers the update); a
loss's *fall* over a window is 1 − (median of its last quarter)/(median of its first
quarter), and it *plateaus* when the fall is below ``Thresholds.plateau``; a term is
*unsolved* while its loss is at least ``Thresholds.unsolved`` of its value at the start of
the run. Every threshold is a field of :class:`Thresholds`, with the measurements behind it.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

__all__ = ["Finding", "Thresholds", "diagnose", "diagnose_run", "render_report", "write_report"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds of the findings (chosen so healthy shipped runs give none).

    Attributes:
        plateau: a loss plateaus on a window if it falls by less than this fraction. Healthy
            Burgers runs fall by 13–69% per window at full size and by ≥ 2.8% in the slow
            phase of a 600-step run (weighted total; each of pde/ic ≥ 2%); the stalled
            term ic falls by 0.2–1.5% per window.
        stuck: imbalance — the neglected term's own loss falls by less than this fraction
            per window. Looser than ``plateau``: a weighted-out term creeps (the stalled
            Burgers runs' ic loss falls 0.2–4.4% per window while the solution stays
            trivial), and the weight and gradient conditions below already exclude healthy
            equal-weight runs.
        unsolved: a term (or the loss sum) is unsolved while above this fraction of its
            start value; a term already 10× down is being fitted, whatever its gradient does.
        dominance: imbalance (weighted out) — the neglected term's raw gradient is at least
            this multiple of another term's while its weight is at most 1/this of that term's
            (the weight undoes the gradient's lead). Equal weights never qualify; the stalled
            Burgers run shows raw ratios 600–10⁴ at weight ratio 10⁻⁴.
        wang_lambda: imbalance (drowned) — Wang et al.'s network-wide λ̂ times w_ref/w_τ
            (the same ratio for the *weighted* gradients) at or above this, with the term's
            loss stuck and unsolved. The healthy Burgers twin reaches 375 (bc, once its loss
            is 100× down, so it is solved and exempt anyway).
        layer_ratio: vanishing/exploding — a layer's RMS gradient entry below 1/this or
            above this multiple of the median layer's (per term). Measured 0.47–12.5 on the
            healthy runs (depth 3 and the default depth 8).
        growth: exploding in time — the term's gradient norm grows this much over the run
            while its loss rises.
        collapse: stagnation — the weighted gradient norm falls below this fraction of its
            peak so far (Adam still moves, but the landscape is flat). The healthy default
            Burgers run dips to 7·10⁻³ of its first-steps peak; the stalled one 10⁻⁴–10⁻³.
        frozen_drift: stagnation — alternatively to ``collapse``, the driver's leading
            subspaces (median over layers) move less than this many degrees between spectral
            evaluations (half an EMA time constant apart). Window medians on the healthy runs:
            1.6–85°; on the stalled one 0.1–3.5° (there ``collapse`` fires). For stalls where
            the gradient keeps its size but circles one fixed subspace.
        conflict: conflicting terms — the median cosine between two terms' gradients, in
            the most affected layer, at or below this while the weighted loss plateaus, both
            terms are unsolved, and one of the two losses rises (or neither falls). At any
            stationary point of a two-term loss the gradients are exactly opposed (cos = −1),
            so opposition at a plateau is only a conflict while neither term has been fitted.
            (Healthy soft-constrained Burgers has cos(pde, ic) ≈ −0.99 *while the loss
            falls*: opposition alone is a trade-off, not a stall.)
        rank_collapsed / rank_before: rank collapse — the median effective rank of Ḡ over
            the layers with min(d_out, d_in) ≥ 2 falls to at most ``rank_collapsed`` after
            having been at least ``rank_before``, while the term's loss plateaus. Single
            layers of healthy runs do sit near rank one for hundreds of steps (the first
            layers of the default Burgers network: 1.00–1.1), the network median does not.
        min_rows: fewer history rows than this: no diagnosis (too little to judge).
    """

    plateau: float = 0.02
    stuck: float = 0.10
    unsolved: float = 0.10
    dominance: float = 10.0
    wang_lambda: float = 1e3
    layer_ratio: float = 1e3
    growth: float = 1e3
    collapse: float = 1e-3
    frozen_drift: float = 0.1
    conflict: float = -0.5
    rank_collapsed: float = 1.05
    rank_before: float = 1.5
    min_rows: int = 8


@dataclass(frozen=True)
class Finding:
    """One named problem of a run.

    Attributes:
        kind: ``imbalance``, ``vanishing``, ``exploding``, ``stagnation``, ``conflict`` or
            ``rank_collapse``.
        steps: first and last training step of the windows where it holds.
        layer: ``"layer<i>"`` where the evidence is strongest (``"all"``: network-wide).
        term: the loss term concerned, or ``"a|b"`` for a pair.
        evidence: the numbers behind it (medians over the strongest window).
        message: one sentence with those numbers.
        suggestion: what to change.
        layers: every layer affected (vanishing/exploding), else just ``layer``.
        window: first and last step of the strongest window, where ``layer`` and the
            evidence numbers were measured.
    """

    kind: str
    steps: tuple[int, int]
    layer: str
    term: str
    evidence: Mapping[str, float]
    message: str
    suggestion: str
    layers: tuple[str, ...] = field(default=())
    window: tuple[int, int] = field(default=(0, 0))


TITLES = {"imbalance": "Loss-term imbalance", "vanishing": "Vanishing gradients",
          "exploding": "Exploding gradients", "stagnation": "Stagnation",
          "conflict": "Conflicting terms", "rank_collapse": "Rank collapse"}


# ------------------------------------------------------------------------------------------
# Robust window summaries (NaN-aware without numpy's all-NaN warnings)
# ------------------------------------------------------------------------------------------
def _median(x: np.ndarray) -> float:
    finite = np.asarray(x, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if finite.size else float("nan")


def _decrease(x: np.ndarray) -> float:
    """Relative fall of ``x`` from the first to the last quarter of a window (medians)."""
    q = max(2, len(x) // 4)
    first, last = _median(x[:q]), _median(x[-q:])
    return 1.0 - last / first if first > 0 else float("nan")


def _windows(n: int, min_rows: int) -> list[tuple[int, int]]:
    width = max(min_rows, n // 6)
    hop = max(1, width // 2)
    starts = list(range(0, max(n - width, 0) + 1, hop))
    if starts[-1] + width < n:
        starts.append(n - width)
    return [(s, min(s + width, n)) for s in starts]


class _Run:
    """The history as arrays: losses, per-layer norms, weighted totals (n rows)."""

    def __init__(self, history, weights: Mapping[str, float]):
        self.h = history
        self.layers, self.terms = list(history.layers), list(history.terms)
        self.weights = {t: float(weights.get(t, 1.0)) for t in self.terms}
        self.loss = {t: history.series("loss", "", t) for t in self.terms}
        self.norm = {t: np.stack([history.series("norm", ly, t) for ly in self.layers])
                     for t in self.terms}                                    # (L, n)
        self.net = {t: np.sqrt((self.norm[t] ** 2).sum(0)) for t in self.terms}
        self.loss_weighted = sum(self.weights[t] * self.loss[t] for t in self.terms)
        self.loss_sum = sum(self.loss[t] for t in self.terms)
        # ‖Σ_τ w_τ G_τ‖² per layer from norms and cosines: Σ_ab w_a w_b n_a n_b cos_ab.
        square = sum((self.weights[t] * self.norm[t]) ** 2 for t in self.terms)
        for pair in history.pairs:
            a, b = pair.split("|")
            cos = np.stack([history.series("cosine", ly, pair) for ly in self.layers])
            weight = 2 * self.weights[a] * self.weights[b]
            square = square + weight * self.norm[a] * self.norm[b] * cos
        self.total_norm_layer = np.sqrt(np.clip(square, 0.0, None))       # (L, n)
        self.total_norm = np.sqrt((self.total_norm_layer ** 2).sum(0))
        self.start = {t: _median(self.loss[t][:2]) for t in self.terms}

    def steps(self, lo: int, hi: int) -> tuple[int, int]:
        return int(self.h.steps[lo]), int(self.h.steps[hi - 1])

    def layer_stack(self, stat: str, key: str) -> np.ndarray:
        return np.stack([self.h.series(stat, ly, key) for ly in self.layers])

    def driver(self, sl: slice) -> str:
        return max(self.terms, key=lambda t: _median(self.weights[t] * self.net[t][sl]))

    def unsolved(self, term: str, sl: slice, th: Thresholds) -> bool:
        end = _median(self.loss[term][sl][-max(2, (sl.stop - sl.start) // 4):])
        return end >= th.unsolved * self.start[term]


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _change(fall: float) -> str:
    """A window's relative fall as a signed change of the loss (−3.0%: fell 3%)."""
    return f"{-fall:+.1%}"


class _Candidate(NamedTuple):
    """A check that fired on one window. ``priority`` ranks the variants of one kind (the
    more specific explanation wins when a finding's windows disagree), ``score`` the
    strength of the evidence within a variant."""

    kind: str
    layer: str
    term: str
    score: float
    evidence: dict
    message: str
    suggestion: str
    layers: tuple[str, ...] = ()
    priority: int = 0


# ------------------------------------------------------------------------------------------
# The checks: each returns the candidates of one window
# ------------------------------------------------------------------------------------------
def _imbalance(run: _Run, sl: slice, th: Thresholds) -> list[_Candidate]:
    out = []
    ref = run.h.reference
    for term in run.terms:
        fall = _decrease(run.loss[term][sl])
        if not (fall < th.stuck and run.unsolved(term, sl, th)):
            continue
        w_t = run.weights[term]
        lam = lam_eff = float("nan")
        if term != ref and run.h.has("imbalance", "all", term):
            lam = _median(run.h.series("imbalance", "all", term)[sl])
            lam_eff = lam * run.weights[ref] / w_t
        evidence = {"loss_start": run.start[term], "loss_end": _median(run.loss[term][sl][-2:]),
                    "loss_change": -fall, "weight": w_t, "wang_lambda": lam,
                    "wang_lambda_weighted": lam_eff}
        # (a) Weighted out: a raw gradient ≥ dominance × another term's, scaled below it by a
        # weight ≤ 1/dominance of that term's. Against the term it dominates most.
        ratios = {b: _median(run.net[term][sl] / np.maximum(run.net[b][sl], 1e-300))
                  for b in run.terms if b != term
                  and w_t <= run.weights[b] / th.dominance}
        ratios = {b: r for b, r in ratios.items() if r >= th.dominance}
        if ratios:
            other = max(ratios, key=ratios.get)
            ratio, w_o = ratios[other], run.weights[other]
            per_layer = [_median(run.norm[term][i, sl] / np.maximum(run.norm[other][i, sl], 1e-300))
                         for i in range(len(run.layers))]
            layer = int(np.nanargmax(per_layer))
            evidence |= {"raw_norm_ratio": ratio, "layer_norm_ratio": per_layer[layer],
                         "other_weight": w_o}
            message = (f"`{term}` is weighted out by `{other}`: its unweighted gradient is "
                       f"{_fmt(ratio)}× `{other}`'s ({_fmt(per_layer[layer])}× in "
                       f"{run.layers[layer]}), but its weight is {_fmt(w_t)} against "
                       f"{_fmt(w_o)}; its loss stays at {_fmt(evidence['loss_end'])} (start "
                       f"{_fmt(run.start[term])}; {_change(fall)} over the window).")
            suggestion = (f"raise `train.weights.{term}` from {_fmt(w_t)} to the order of "
                          f"`{other}`'s weight ({_fmt(w_o)}), or adapt the weights during "
                          f"training (learning-rate annealing, Wang et al. 2021).")
            out.append(_Candidate("imbalance", run.layers[layer], term, ratio, evidence, message,
                                  suggestion, priority=1))
        # (b) Drowned: Wang et al.'s λ̂ of the weighted gradients is extreme.
        elif lam_eff >= th.wang_lambda:
            lam_layers = [_median(run.h.series("imbalance", ly, term)[sl]) for ly in run.layers]
            layer = int(np.nanargmax(lam_layers))
            message = (f"`{term}` is drowned by `{ref}`: Wang et al.'s imbalance "
                       f"λ̂ = max|∇L_{ref}| / mean|∇L_{term}| is {_fmt(lam)} (× w_{ref}/w_{term}: "
                       f"{_fmt(lam_eff)}; {_fmt(lam_layers[layer])} in {run.layers[layer]}) "
                       f"and its loss does not fall ({_change(fall)} over the window).")
            suggestion = (f"set `train.weights.{term}` ≈ {_fmt(lam * run.weights[ref])} "
                          f"(λ̂·w_{ref}) or anneal it with λ̂ during training (Wang et al. 2021).")
            out.append(_Candidate("imbalance", run.layers[layer], term, lam_eff, evidence, message,
                                  suggestion))
    return out


def _layer_scale(run: _Run, sl: slice, th: Thresholds) -> list[_Candidate]:
    out = []
    shapes = run.h.shapes
    size = np.array([np.sqrt(shapes[ly][0] * shapes[ly][1]) for ly in run.layers])[:, None]
    for term in run.terms:
        rms = run.norm[term][:, sl] / size
        if len(run.layers) >= 3 and np.isfinite(rms).any() and np.nanmax(rms) > 0:
            middle = np.median(rms, axis=0, keepdims=True)
            ratio = np.array([_median(r) for r in rms / np.maximum(middle, 1e-300)])
            for kind, bad in (("vanishing", ratio <= 1.0 / th.layer_ratio),
                              ("exploding", ratio >= th.layer_ratio)):
                if not bad.any():
                    continue
                i = int(np.nanargmin(ratio)) if kind == "vanishing" else int(np.nanargmax(ratio))
                affected = tuple(run.layers[j] for j in np.flatnonzero(bad))
                evidence = {"rms_ratio_to_median_layer": ratio[i],
                            "rms": _median(rms[i]), "median_layer_rms": _median(middle)}
                message = (f"{run.layers[i]}'s gradient of `{term}` is {_fmt(ratio[i])}× the "
                           f"median layer's (RMS entry {_fmt(evidence['rms'])} vs "
                           f"{_fmt(evidence['median_layer_rms'])}); affected: "
                           f"{', '.join(affected)}.")
                suggestion = ("use a variance-preserving initialisation (xavier for tanh), "
                              "normalised inputs, a shallower network or residual connections"
                              if kind == "vanishing" else
                              "lower the learning rate, normalise inputs/outputs, or clip "
                              "gradients; check the loss weights for extreme values")
                out.append(_Candidate(kind, run.layers[i], term,
                                      abs(np.log10(max(ratio[i], 1e-300))), evidence, message,
                                      suggestion, affected))
        first = _median(run.net[term][:2])
        growth = _median(run.net[term][sl]) / first if first > 0 else float("nan")
        if growth >= th.growth and _decrease(run.loss[term][sl]) < 0:
            grow_layers = [_median(run.norm[term][i, sl])
                           / max(_median(run.norm[term][i, :2]), 1e-300)
                           for i in range(len(run.layers))]
            i = int(np.nanargmax(grow_layers))
            evidence = {"norm_growth": growth, "layer_growth": grow_layers[i]}
            message = (f"the gradient of `{term}` grew {_fmt(growth)}× since the start "
                       f"({_fmt(grow_layers[i])}× in {run.layers[i]}) while its loss rose.")
            out.append(_Candidate("exploding", run.layers[i], term, np.log10(growth), evidence,
                                  message, "lower the learning rate or clip gradients; check "
                                  "for a diverging term"))
    return out


def _stagnation(run: _Run, sl: slice, th: Thresholds, peak: np.ndarray) -> list[_Candidate]:
    fall = _decrease(run.loss_weighted[sl])
    unsolved = _median(run.loss_sum[sl][-2:]) >= th.unsolved * _median(run.loss_sum[:2])
    if not (fall < th.plateau and unsolved):
        return []
    driver = run.driver(sl)
    now = np.array([_median(x[sl]) for x in run.total_norm_layer])
    collapse = now / np.maximum(peak, 1e-300)
    drift = np.array([_median(run.h.series("drift", ly, driver)[sl]) for ly in run.layers])
    collapsed = _median(run.total_norm[sl]) / max(float(peak.max()), 1e-300)
    frozen = _median(drift) if np.isfinite(drift).any() else float("nan")
    if not (collapsed <= th.collapse or frozen <= th.frozen_drift):
        return []
    worst = max(run.terms, key=lambda t: _median(run.loss[t][sl]))
    i = int(np.nanargmin(collapse)) if collapsed <= th.collapse else int(np.nanargmin(drift))
    snr = _median(run.h.series("snr", run.layers[i], driver)[sl])
    evidence = {"weighted_loss_change": -fall, "loss_sum": _median(run.loss_sum[sl][-2:]),
                "loss_sum_start": _median(run.loss_sum[:2]), "gradient_vs_peak": collapsed,
                "layer_gradient_vs_peak": collapse[i], "driver_drift_deg": frozen,
                "driver_snr": snr}
    why = (f"the weighted gradient norm fell to {_fmt(collapsed)} of its peak "
           f"({_fmt(collapse[i])} in {run.layers[i]})" if collapsed <= th.collapse else
           f"the leading subspaces of `{driver}` are frozen (drift {_fmt(frozen)}° between "
           f"spectral checks)")
    message = (f"the weighted loss changed by {_change(fall)} over the window and the unweighted "
               f"loss sum is still {_fmt(evidence['loss_sum'])} (start "
               f"{_fmt(evidence['loss_sum_start'])}, mostly `{worst}`), while {why}; "
               f"SNR of `{driver}` there {_fmt(snr)}.")
    suggestion = (f"training has stopped making progress on `{worst}`: check the findings on "
                  f"weights and conflicts first; otherwise raise the learning rate, resample "
                  f"collocation points, or switch to L-BFGS from here.")
    return [_Candidate("stagnation", run.layers[i], worst, -np.log10(max(collapsed, 1e-300)),
                       evidence, message, suggestion)]


def _conflict(run: _Run, sl: slice, th: Thresholds) -> list[_Candidate]:
    out = []
    fall = _decrease(run.loss_weighted[sl])
    if not fall < th.plateau:
        return out
    for pair in run.h.pairs:
        a, b = pair.split("|")
        cos = run.layer_stack("cosine", pair)[:, sl]
        medians = np.array([_median(c) for c in cos])
        if not np.isfinite(medians).any() or np.nanmin(medians) > th.conflict:
            continue
        if not (run.unsolved(a, sl, th) and run.unsolved(b, sl, th)):
            continue  # one of them is fitted: a converged trade-off, not a tug of war
        # Harm, not trade-off: one of the two rises, or neither falls.
        falls = (_decrease(run.loss[a][sl]), _decrease(run.loss[b][sl]))
        if not (min(falls) < -th.plateau or max(falls) < th.plateau):
            continue
        i = int(np.nanargmin(medians))
        angle = _median(run.h.series("subspace_angle", run.layers[i], pair)[sl])
        evidence = {"cosine": medians[i], "negative_fraction": float(np.mean(cos[i] < 0)),
                    "network_cosine": _median(run.h.series("cosine", "all", pair)[sl]),
                    "subspace_angle_deg": angle, "weighted_loss_change": -fall,
                    f"{a}_loss_change": -falls[0], f"{b}_loss_change": -falls[1]}
        message = (f"`{a}` and `{b}` pull against each other: median cosine "
                   f"{_fmt(medians[i])} in {run.layers[i]} (network "
                   f"{_fmt(evidence['network_cosine'])}, "
                   f"negative on {evidence['negative_fraction']:.0%} of checks; leading "
                   f"subspaces {_fmt(angle)}° apart) while the weighted loss changed by "
                   f"{_change(fall)} (`{a}` {_change(falls[0])}, `{b}` {_change(falls[1])}).")
        suggestion = ("balance the two terms' weights, or resolve the conflict in the update "
                      "(gradient projection, e.g. PCGrad, Yu et al. 2020; or dual-cone descent, "
                      "Hwang et al. 2024)")
        out.append(_Candidate("conflict", run.layers[i], pair, -medians[i], evidence, message,
                              suggestion))
    return out


def _rank_collapse(run: _Run, sl: slice, th: Thresholds, earlier: slice) -> list[_Candidate]:
    """Network-level: the median effective rank over the layers with min(d_out, d_in) ≥ 2."""
    out = []
    eligible = [ly for ly in run.layers if min(run.h.shapes[ly]) >= 2]
    if not eligible:
        return out
    for term in run.terms:
        if not (_decrease(run.loss[term][sl]) < th.plateau and run.unsolved(term, sl, th)):
            continue
        erank = np.stack([run.h.series("erank", ly, term) for ly in eligible])  # (L', n)
        network = np.array([_median(column) for column in erank.T])
        now = _median(network[sl])
        before = (float(np.nanmax(network[earlier])) if np.isfinite(network[earlier]).any()
                  else float("nan"))
        if now <= th.rank_collapsed and before >= th.rank_before:
            per_layer = [_median(e[sl]) for e in erank]
            i = int(np.nanargmin(per_layer))
            evidence = {"effective_rank": now, "effective_rank_before": before,
                        "layer_effective_rank": per_layer[i]}
            message = (f"the EMA gradients of `{term}` collapsed to rank one across the network "
                       f"(median effective rank {_fmt(now)} over {len(eligible)} layers, was "
                       f"{_fmt(before)}; {_fmt(per_layer[i])} in {eligible[i]}) while its "
                       f"loss plateaus: one direction is all the term still asks for.")
            suggestion = ("the term has settled into a single gradient direction the update "
                          "does not follow; see imbalance/conflict findings, or change the "
                          "network (width, activation, input scaling) so it can represent "
                          "what is missing")
            out.append(_Candidate("rank_collapse", eligible[i], term, before / now, evidence,
                                  message, suggestion))
    return out


def diagnose(history, weights: Mapping[str, float] | None = None,
             thresholds: Thresholds = Thresholds()) -> list[Finding]:
    """Named findings of a monitored run.

    Args:
        history: a :class:`pinnsketch.sketch.statistics.MonitorHistory`.
        weights: the run's loss weights (``train.weights``); unnamed terms weigh 1.
        thresholds: the decision thresholds.

    Returns:
        Findings in the order imbalance, vanishing, exploding, stagnation, conflict, rank
        collapse (then by first step); empty for a healthy run or too short a history.
    """
    n = len(history.steps)
    if n < thresholds.min_rows:
        return []
    run = _Run(history, weights or {})
    windows = _windows(n, thresholds.min_rows)
    hits: dict[tuple[str, str], list[tuple[int, _Candidate]]] = {}
    for w, (lo, hi) in enumerate(windows):
        sl = slice(lo, hi)
        # Peak of each layer's weighted gradient norm up to (and including) the window start.
        peak = np.array([np.nanmax(x[:lo + 1]) if np.isfinite(x[:lo + 1]).any() else np.nan
                         for x in run.total_norm_layer])
        candidates = (_imbalance(run, sl, thresholds) + _layer_scale(run, sl, thresholds)
                      + _stagnation(run, sl, thresholds, peak) + _conflict(run, sl, thresholds)
                      + _rank_collapse(run, sl, thresholds, slice(0, max(lo, 1))))
        for cand in candidates:
            hits.setdefault((cand.kind, cand.term), []).append((w, cand))
    findings = []
    for (kind, term), found in hits.items():
        for group in _consecutive(found):
            if len(group) < 2:
                continue  # a single window is a transient, not a finding
            w_best, best = max(group, key=lambda wc: (wc[1].priority, wc[1].score))
            lo, hi = windows[group[0][0]][0], windows[group[-1][0]][1]
            findings.append(Finding(kind, run.steps(lo, hi), best.layer, term,
                                    {k: float(v) for k, v in best.evidence.items()},
                                    best.message, best.suggestion, best.layers or (best.layer,),
                                    run.steps(*windows[w_best])))
    order = list(TITLES)
    findings.sort(key=lambda f: (order.index(f.kind), f.steps[0]))
    return findings


def _consecutive(found: list[tuple[int, _Candidate]]) -> list[list[tuple[int, _Candidate]]]:
    """Split (window index, candidate) pairs into runs of consecutive windows."""
    groups: list[list[tuple[int, _Candidate]]] = []
    for w, cand in sorted(found, key=lambda x: x[0]):
        if groups and w == groups[-1][-1][0] + 1:
            groups[-1].append((w, cand))
        else:
            groups.append([(w, cand)])
    return groups


# ------------------------------------------------------------------------------------------
# Reports
# ------------------------------------------------------------------------------------------
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


def _run_config(run_dir: Path):
    """The run's resolved configuration (``RUN_DIR/config.yaml``), or None outside a run."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        return None
    from pinnsketch.config import load_config

    return load_config(config_path)


def write_report(run_dir: str | Path, monitor, metrics: Sequence[Mapping[str, Any]] = (), *,
                 weights: Mapping[str, float] | None = None,
                 figures: bool | None = None) -> str:
    """Diagnose ``monitor`` and write ``RUN_DIR/diagnosis.md`` and ``RUN_DIR/plots/monitor_*.png``.

    Args:
        run_dir: the run folder (created if missing).
        monitor: a :class:`pinnsketch.sketch.monitor.SketchMonitor`.
        metrics: the run's metric records (``metrics.jsonl``), for context.
        weights: loss weights; default ``train.weights`` of ``RUN_DIR/config.yaml`` (or all 1).
        figures: draw the heat maps; default ``output.plots`` of the run's config (or True).

    Returns:
        The Markdown written.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = _run_config(run_dir)
    if weights is None:
        weights = dict(config.train.weights) if config is not None else {}
    if figures is None:
        figures = config.output.plots if config is not None else True
    history = monitor.history_view()
    findings = diagnose(history, weights)
    paths = []
    if figures:
        from pinnsketch.sketch.figures import plot_monitor

        paths = [str(p.relative_to(run_dir)) for p in plot_monitor(history, run_dir / "plots")]
    text = render_report(findings, history, title=run_dir.name,
                         monitor_config=monitor.config_dict(), weights=weights,
                         metrics=metrics, figures=paths)
    (run_dir / "diagnosis.md").write_text(text)
    log.info("diagnosis: %d finding(s), written to %s", len(findings), run_dir / "diagnosis.md")
    return text


def diagnose_run(run_dir: str | Path) -> str:
    """Rebuild the monitor of a finished (or interrupted) run from its checkpoint and rewrite
    ``diagnosis.md`` and the monitor figures; returns the Markdown.

    Raises:
        ConfigError: if the run was not monitored (no monitor state in its checkpoint).
    """
    from pinnsketch.config import ConfigError
    from pinnsketch.runs import RunDir
    from pinnsketch.sketch.monitor import SketchMonitor

    folder = RunDir(run_dir)
    state = folder.load_checkpoint()["trainer"].get("monitor")
    if state is None:
        raise ConfigError(f"{run_dir}: the run was not monitored (no monitor state in its "
                          f"checkpoint; train with monitor.enabled: true)")
    monitor = SketchMonitor.from_state_dict(state)
    return write_report(folder.path, monitor, folder.read_metrics())
