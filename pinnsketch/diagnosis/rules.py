"""The diagnosis rules: each reads one window of a monitor's history and proposes candidates.

Notation and the windowing are those of :mod:`pinnsketch.diagnosis.findings`.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np

from pinnsketch.diagnosis.findings import Thresholds

__all__ = ["Candidate", "RunView", "conflict", "imbalance", "layer_scale", "rank_collapse",
           "stagnation", "windows"]


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


# ------------------------------------------------------------------------------------------
# The checks: each returns the candidates of one window
# ------------------------------------------------------------------------------------------
def imbalance(run: RunView, sl: slice, th: Thresholds) -> list[Candidate]:
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
            out.append(Candidate("imbalance", run.layers[layer], term, ratio, evidence, message,
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
            out.append(Candidate("imbalance", run.layers[layer], term, lam_eff, evidence, message,
                                  suggestion))
    return out


def layer_scale(run: RunView, sl: slice, th: Thresholds) -> list[Candidate]:
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
                out.append(Candidate(kind, run.layers[i], term,
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
            out.append(Candidate("exploding", run.layers[i], term, np.log10(growth), evidence,
                                  message, "lower the learning rate or clip gradients; check "
                                  "for a diverging term"))
    return out


def stagnation(run: RunView, sl: slice, th: Thresholds, peak: np.ndarray) -> list[Candidate]:
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
    return [Candidate("stagnation", run.layers[i], worst, -np.log10(max(collapsed, 1e-300)),
                       evidence, message, suggestion)]


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
        out.append(Candidate("conflict", run.layers[i], pair, -medians[i], evidence, message,
                              suggestion))
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
                       f"(median effective rank {_fmt(now)} over {len(eligible)} layers, was "
                       f"{_fmt(before)}; {_fmt(per_layer[i])} in {eligible[i]}) while its "
                       f"loss plateaus: one direction is all the term still asks for.")
            suggestion = ("the term has settled into a single gradient direction the update "
                          "does not follow; see imbalance/conflict findings, or change the "
                          "network (width, activation, input scaling) so it can represent "
                          "what is missing")
            out.append(Candidate("rank_collapse", eligible[i], term, before / now, evidence,
                                  message, suggestion))
    return out
