"""The diagnosis rules: each reads one window of a monitor's history and proposes candidates.

Notation and the windowing are those of :mod:`pinnsketch.diagnosis.findings`.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np

from pinnsketch.diagnosis.findings import Thresholds, fmt

__all__ = ["Candidate", "RunView", "conflict", "imbalance", "layer_scale", "rank_collapse",
           "stagnation", "trivial_solution", "vanishing_overall", "windows"]


def _median(x: np.ndarray) -> float:
    finite = np.asarray(x, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if finite.size else float("nan")


def _decrease(x: np.ndarray) -> float:
    """Relative fall of ``x`` from the first to the last quarter of a window (medians)."""
    q = max(2, len(x) // 4)
    first, last = _median(x[:q]), _median(x[-q:])
    return 1.0 - last / first if first > 0 else float("nan")


def windows(n: int, min_rows: int) -> list[tuple[int, int]]:
    width = max(min_rows, n // 6)
    hop = max(1, width // 2)
    starts = list(range(0, max(n - width, 0) + 1, hop))
    if starts[-1] + width < n:
        starts.append(n - width)
    return [(s, min(s + width, n)) for s in starts]


class RunView:
    """The history as arrays: losses, per-layer norms, weighted totals (n rows).

    Weights: those the history recorded at its last check where it recorded them (adaptive
    weights settle, and the last ones are in force when the run is judged), else ``weights``.
    """

    def __init__(self, history, weights: Mapping[str, float]):
        self.h = history
        self.layers, self.terms = list(history.layers), list(history.terms)
        self.weights = history.weights_in_force(weights)
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
        # Glorot scale of the monitored weights, ‖W‖ ≈ sqrt(Σ_ℓ 2 m n / (m + n)).
        self.weight_scale = float(np.sqrt(sum(2 * m * n / (m + n)
                                              for m, n in history.shapes.values())))

    def steps(self, lo: int, hi: int) -> tuple[int, int]:
        return int(self.h.steps[lo]), int(self.h.steps[hi - 1])

    def layer_stack(self, stat: str, key: str) -> np.ndarray:
        return np.stack([self.h.series(stat, ly, key) for ly in self.layers])

    def driver(self, sl: slice) -> str:
        return max(self.terms, key=lambda t: _median(self.weights[t] * self.net[t][sl]))

    def unsolved_total(self, sl: slice, th: Thresholds) -> bool:
        """The unweighted loss sum is still at least ``th.unsolved`` of its start."""
        return _median(self.loss_sum[sl][-2:]) >= th.unsolved * _median(self.loss_sum[:2])

    def got_past(self, term: str, hi: int, th: Thresholds) -> bool:
        """The run left a stall ending at row ``hi`` behind: by its last rows the loss of
        ``term`` (the weighted total for ``all`` or a pair) is below ``th.unsolved`` of what
        it was there (a healthy run may pass through a plateau that a later phase ends)."""
        series = self.loss.get(term, self.loss_weighted)
        return _median(series[-2:]) < th.unsolved * _median(series[max(hi - 2, 0):hi])

    def unsolved(self, term: str, sl: slice, th: Thresholds) -> bool:
        end = _median(self.loss[term][sl][-max(2, (sl.stop - sl.start) // 4):])
        return end >= th.unsolved * self.start[term]


def _change(fall: float) -> str:
    """A window's relative fall as a signed change of the loss (−3.0%: fell 3%)."""
    return f"{-fall:+.1%}"


class Candidate(NamedTuple):
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
    remedy: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------------
# The checks: each returns the candidates of one window
# ------------------------------------------------------------------------------------------
def imbalance(run: RunView, sl: slice, th: Thresholds) -> list[Candidate]:
    """A stuck, unsolved term whose *weighted* gradient w_τ·N_τ is at most 1/dominance of
    another term's: the update follows the other term. Its remedy gives τ the weight that
    equalises the two weighted gradients (the grad-norm rule, Wang et al. 2021/2023)."""
    out = []
    ref = run.h.reference
    for term in run.terms:
        fall = _decrease(run.loss[term][sl])
        if not (fall < th.stuck and run.unsolved(term, sl, th)):
            continue
        w_t = run.weights[term]
        mine = w_t * run.net[term][sl]
        ratios = {b: _median(run.weights[b] * run.net[b][sl] / np.maximum(mine, 1e-300))
                  for b in run.terms if b != term}
        ratios = {b: r for b, r in ratios.items() if r >= th.dominance}
        if not ratios:
            continue
        other = max(ratios, key=ratios.get)
        ratio, w_o = ratios[other], run.weights[other]
        raw = _median(run.net[other][sl] / np.maximum(run.net[term][sl], 1e-300))
        per_layer = [_median(w_o * run.norm[other][i, sl]
                             / np.maximum(w_t * run.norm[term][i, sl], 1e-300))
                     for i in range(len(run.layers))]
        layer = int(np.nanargmax(per_layer))
        lam = (_median(run.h.series("imbalance", "all", term)[sl])
               if term != ref and run.h.has("imbalance", "all", term) else float("nan"))
        weight = w_t * ratio
        evidence = {"loss_start": run.start[term], "loss_end": _median(run.loss[term][sl][-2:]),
                    "loss_change": -fall, "weighted_norm_ratio": ratio,
                    "raw_norm_ratio": raw, "layer_weighted_norm_ratio": per_layer[layer],
                    "weight": w_t, "other_weight": w_o, "wang_lambda": lam}
        cause = (f"its weight {fmt(w_t)} against {fmt(w_o)} puts it there (unweighted, "
                 f"`{other}`'s gradient is only {fmt(raw)}× its own)"
                 if raw < th.dominance else
                 f"its own gradient is {fmt(raw)}× smaller (weights {fmt(w_t)} and "
                 f"{fmt(w_o)})")
        message = (f"`{term}` is outweighed by `{other}`: `{other}`'s weighted gradient is "
                   f"{fmt(ratio)}× `{term}`'s ({fmt(per_layer[layer])}× in "
                   f"{run.layers[layer]}); {cause}. Its loss stays at "
                   f"{fmt(evidence['loss_end'])} (start {fmt(run.start[term])}; "
                   f"{_change(fall)} over the window).")
        suggestion = (f"raise `train.weights.{term}` from {fmt(w_t)} to {fmt(weight)}, the "
                      f"weight that equalises the two weighted gradients, or let the weights "
                      f"adapt during training (`train.balancing.scheme=grad_norm`, Wang et "
                      f"al. 2023).")
        out.append(Candidate("imbalance", run.layers[layer], term, ratio, evidence, message,
                              suggestion, remedy=(f"train.weights.{term}={weight:.3g}",)))
    return out


def trivial_solution(run: RunView, sl: slice, th: Thresholds) -> list[Candidate]:
    """The PDE residual is fitted (below ``th.unsolved`` of its start) while a constraint or
    data term stays stuck and unsolved: the network has settled on a solution of the PDE
    alone — for Burgers, heat or Poisson u = 0 is one — that the other terms do not pull it
    off (Rohrhofer et al. 2023)."""
    ref = run.h.reference
    if ref != "pde" or run.unsolved(ref, sl, th):
        return []  # without a PDE residual term there is no PDE to solve trivially
    out = []
    for term in run.terms:
        fall = _decrease(run.loss[term][sl])
        if term == ref or not (fall < th.trivial_stuck and run.unsolved(term, sl, th)):
            continue
        w_t, w_ref = run.weights[term], run.weights[ref]
        end = {t: _median(run.loss[t][sl][-2:]) for t in (ref, term)}
        evidence = {f"{ref}_loss_vs_start": end[ref] / run.start[ref],
                    "loss_vs_start": end[term] / run.start[term], "loss_change": -fall,
                    "weight": w_t, "reference_weight": w_ref}
        message = (f"`{ref}` is fitted ({fmt(end[ref])}, {fmt(evidence[f'{ref}_loss_vs_start'])} "
                   f"of its start) while `{term}` stays at {fmt(end[term])} "
                   f"({fmt(evidence['loss_vs_start'])} of its start; {_change(fall)} over the "
                   f"window): the network fits a solution of the PDE that ignores `{term}`.")
        if w_t < w_ref:
            suggestion = (f"`{term}` weighs {fmt(w_t)} against `{ref}`'s {fmt(w_ref)}: "
                          f"give it the same weight, or impose it exactly (hard constraints)")
            remedy: tuple[str, ...] = (f"train.weights.{term}={w_ref:g}",)
        else:  # equal weights do not pull it off: weights from the gradients' sizes
            suggestion = (f"let the weights adapt to the gradients' sizes (`train.balancing."
                          f"scheme=grad_norm`, Wang et al. 2023: `{term}` gets Σ‖∇L‖/‖∇L_{term}‖), "
                          f"or impose `{term}` exactly (`model.hard_constraints: true` where the "
                          f"problem supports it)")
            remedy = ("train.balancing.scheme=grad_norm",)
        out.append(Candidate("trivial_solution", "all", term, -np.log10(
            max(evidence[f"{ref}_loss_vs_start"], 1e-300)), evidence, message, suggestion,
            tuple(run.layers), remedy=remedy))
    return out


def vanishing_overall(run: RunView, sl: slice, th: Thresholds) -> list[Candidate]:
    """The whole network's weighted gradient is, and always was, negligible against the loss
    it should reduce, while that loss plateaus unsolved — whatever the layers' relative
    scales.

    Scale-free measure (the loss's elasticity): e = ‖∇_W L‖·‖W‖ / L, the fraction by which
    the loss would change if every weight changed by its own size, with ‖W‖ taken at its
    Glorot scale, ‖W_ℓ‖²_F ≈ 2 m n / (m + n) (the monitor sees gradients, not weights).
    """
    fall = _decrease(run.loss_weighted[sl])
    loss = _median(run.loss_weighted[sl])
    if not (fall < th.plateau and run.unsolved_total(sl, th)) or not loss > 0:
        return []
    elasticity = _median(run.total_norm[sl]) * run.weight_scale / loss
    # Also at the largest gradient so far: a gradient that was large and collapsed is
    # stagnation (see there), not a network whose gradients never carried the loss.
    peak = float(np.nanmax(run.total_norm[:sl.stop])) * run.weight_scale / loss
    if not (elasticity <= th.elasticity and peak <= th.elasticity):
        return []
    worst = max(run.terms, key=lambda t: _median(run.loss[t][sl]))
    evidence = {"elasticity": elasticity, "peak_elasticity": peak,
                "weighted_gradient_norm": _median(run.total_norm[sl]),
                "weighted_loss": loss, "weighted_loss_change": -fall}
    message = (f"the weighted gradient ({fmt(evidence['weighted_gradient_norm'])}, all layers) "
               f"is negligible against the weighted loss {fmt(loss)}: changing every weight "
               f"by its own size would change the loss by a fraction {fmt(elasticity)}; the "
               f"loss changed by {_change(fall)} over the window.")
    suggestion = ("use a variance-preserving initialisation (xavier for tanh), normalised "
                  "inputs and outputs (a loss of the order of its residuals' scale), or a "
                  "shallower network")
    return [Candidate("vanishing", "all", worst, -np.log10(max(elasticity, 1e-300)), evidence,
                      message, suggestion, tuple(run.layers),
                      remedy=("model.init=xavier_normal", "model.normalize_inputs=true"))]


def layer_scale(run: RunView, sl: slice, th: Thresholds) -> list[Candidate]:
    """Vanishing or exploding gradients across layers: an unsolved term's RMS gradient
    entry in one layer beyond ``th.layer_ratio`` of the median layer's, or a term's gradient
    grown ``th.growth``-fold while its loss rises."""
    out = []
    shapes = run.h.shapes
    size = np.array([np.sqrt(shapes[ly][0] * shapes[ly][1]) for ly in run.layers])[:, None]
    for term in run.terms:
        rms = run.norm[term][:, sl] / size
        # Uneven layers matter while they stall a term: not once it is being fitted (near
        # convergence every gradient is small and their ratios mean nothing).
        if (len(run.layers) >= 3 and np.isfinite(rms).any() and np.nanmax(rms) > 0
                and run.unsolved(term, sl, th)):
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
                message = (f"{run.layers[i]}'s gradient of `{term}` is {fmt(ratio[i])}× the "
                           f"median layer's (RMS entry {fmt(evidence['rms'])} vs "
                           f"{fmt(evidence['median_layer_rms'])}); affected: "
                           f"{', '.join(affected)}.")
                suggestion = ("use a variance-preserving initialisation (xavier for tanh), "
                              "normalised inputs, a shallower network or residual connections"
                              if kind == "vanishing" else
                              "lower the learning rate, normalise inputs/outputs, or clip "
                              "gradients; check the loss weights for extreme values")
                remedy = ("model.init=xavier_normal",) if kind == "vanishing" else ()
                out.append(Candidate(kind, run.layers[i], term,
                                      abs(np.log10(max(ratio[i], 1e-300))), evidence, message,
                                      suggestion, affected, remedy=remedy))
        first = _median(run.net[term][:2])
        growth = _median(run.net[term][sl]) / first if first > 0 else float("nan")
        if growth >= th.growth and _decrease(run.loss[term][sl]) < 0:
            grow_layers = [_median(run.norm[term][i, sl])
                           / max(_median(run.norm[term][i, :2]), 1e-300)
                           for i in range(len(run.layers))]
            i = int(np.nanargmax(grow_layers))
            evidence = {"norm_growth": growth, "layer_growth": grow_layers[i]}
            message = (f"the gradient of `{term}` grew {fmt(growth)}× since the start "
                       f"({fmt(grow_layers[i])}× in {run.layers[i]}) while its loss rose.")
            out.append(Candidate("exploding", run.layers[i], term, np.log10(growth), evidence,
                                  message, "lower the learning rate or clip gradients; check "
                                  "for a diverging term"))
    return out


def stagnation(run: RunView, sl: slice, th: Thresholds, peak: np.ndarray) -> list[Candidate]:
    fall = _decrease(run.loss_weighted[sl])
    if not (fall < th.plateau and run.unsolved_total(sl, th)):
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
    why = (f"the weighted gradient norm fell to {fmt(collapsed)} of its peak "
           f"({fmt(collapse[i])} in {run.layers[i]})" if collapsed <= th.collapse else
           f"the leading subspaces of `{driver}` are frozen (drift {fmt(frozen)}° between "
           f"spectral checks)")
    message = (f"the weighted loss changed by {_change(fall)} over the window and the unweighted "
               f"loss sum is still {fmt(evidence['loss_sum'])} (start "
               f"{fmt(evidence['loss_sum_start'])}, mostly `{worst}`), while {why}; "
               f"SNR of `{driver}` there {fmt(snr)}.")
    suggestion = (f"training has stopped making progress on `{worst}`: check the findings on "
                  f"weights and conflicts first; otherwise raise the learning rate, resample "
                  f"collocation points, or end the Adam phase here and hand over to the "
                  f"self-scaled quasi-Newton phase (`train.quasi_newton: ssbroyden2`).")
    return [Candidate("stagnation", run.layers[i], worst, -np.log10(max(collapsed, 1e-300)),
                       evidence, message, suggestion,
                       remedy=("train.quasi_newton=ssbroyden2",))]


def conflict(run: RunView, sl: slice, th: Thresholds) -> list[Candidate]:
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
        if not (min(falls) < -th.plateau or max(falls) < th.conflict_stall):
            continue
        i = int(np.nanargmin(medians))
        angle = _median(run.h.series("subspace_angle", run.layers[i], pair)[sl])
        evidence = {"cosine": medians[i], "negative_fraction": float(np.mean(cos[i] < 0)),
                    "network_cosine": _median(run.h.series("cosine", "all", pair)[sl]),
                    "subspace_angle_deg": angle, "weighted_loss_change": -fall,
                    f"{a}_loss_change": -falls[0], f"{b}_loss_change": -falls[1]}
        message = (f"`{a}` and `{b}` pull against each other: median cosine "
                   f"{fmt(medians[i])} in {run.layers[i]} (network "
                   f"{fmt(evidence['network_cosine'])}, "
                   f"negative on {evidence['negative_fraction']:.0%} of checks; leading "
                   f"subspaces {fmt(angle)}° apart) while the weighted loss changed by "
                   f"{_change(fall)} (`{a}` {_change(falls[0])}, `{b}` {_change(falls[1])}).")
        suggestion = ("a second-order phase resolves opposed gradients through curvature "
                      "(`train.quasi_newton: ssbroyden2`; Wang et al. 2025); or balance the "
                      "two terms' weights, or project the conflict out of the update (PCGrad, "
                      "Yu et al. 2020)")
        out.append(Candidate("conflict", run.layers[i], pair, -medians[i], evidence, message,
                              suggestion, remedy=("train.quasi_newton=ssbroyden2",)))
    return out


def rank_collapse(run: RunView, sl: slice, th: Thresholds, earlier: slice) -> list[Candidate]:
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
                       f"(median effective rank {fmt(now)} over {len(eligible)} layers, was "
                       f"{fmt(before)}; {fmt(per_layer[i])} in {eligible[i]}) while its "
                       f"loss plateaus: one direction is all the term still asks for.")
            suggestion = ("the term has settled into a single gradient direction the update "
                          "does not follow; see imbalance/conflict findings, or change the "
                          "network (width, activation, input scaling) so it can represent "
                          "what is missing")
            out.append(Candidate("rank_collapse", eligible[i], term, before / now, evidence,
                                  message, suggestion))
    return out
