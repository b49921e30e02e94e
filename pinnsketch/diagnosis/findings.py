"""Stall diagnosis: the findings, their names and the thresholds that decide them.

The history (:class:`pinnsketch.monitor.MonitorHistory`) is cut into windows of a
sixth of its rows (at least 8), each half-overlapping the next. A check fires on a window; a
finding is reported when it fires on at least two consecutive windows (about a quarter of the
run), with the step range they cover and the term — and, from the window where it is
strongest, the layer, the evidence numbers and a suggestion.

Terms are compared through their *weighted* gradients w_τ·N_τ — what the update follows —
built from the unweighted gradients the monitor receives and the run's loss weights w_τ
(``train.weights``). Notation: N_τ = network-wide ‖∇_W L_τ‖ (weight matrices only); the
*driver* is the term with the largest w_τ·N_τ (it steers the update); a
loss's *fall* over a window is 1 − (median of its last quarter)/(median of its first
quarter), and it *plateaus* when the fall is below ``Thresholds.plateau``; a term is
*unsolved* while its loss is at least ``Thresholds.unsolved`` of its value at the start of
the run. Every threshold is a field of :class:`Thresholds`, with the measurements behind it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

__all__ = ["Finding", "SOURCES", "TITLES", "Thresholds", "fmt"]


def fmt(x: float) -> str:
    """A number as findings print it: three significant digits."""
    return f"{x:.3g}"


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds of the findings, with the measurements or the reasoning behind each.

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
        trivial_stuck: trivial-solution trap — the constraint term's loss falls by less
            than this fraction per window (the same value as ``stuck`` until calibrated
            apart).
        unsolved: a term (or the loss sum) is unsolved while above this fraction of its
            start value; a term already 10× down is being fitted, whatever its gradient does.
        dominance: imbalance — another term's weighted gradient is at least this multiple of
            the stuck, unsolved term's (an order of magnitude: the update then follows the
            other term to within 10%, whatever causes it, the weights or the gradients).
        elasticity: vanishing (whole network) — the loss's elasticity ‖∇_W L‖·‖W‖/L (weighted;
            ‖W‖ at its Glorot scale) at or below this while the loss plateaus unsolved:
            changing every weight by its own size would change the loss by under 0.1%, so no
            step an optimizer takes at the parameters' scale can make progress. Relative
            scales (``layer_ratio``) cannot see a network whose layers all vanish alike.
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
        conflict_stall: conflicting terms — "neither falls" means each of the two losses
            falls by less than this fraction per window (``plateau`` until the diagnosis
            suite calibrated it on its own: opposed terms may both still creep).
        rank_collapsed / rank_before: rank collapse — the median effective rank of Ḡ over
            the layers with min(d_out, d_in) ≥ 2 falls to at most ``rank_collapsed`` after
            having been at least ``rank_before``, while the term's loss plateaus. Single
            layers of healthy runs do sit near rank one for hundreds of steps (the first
            layers of the default Burgers network: 1.00–1.1), the network median does not.
        min_rows: fewer history rows than this: no diagnosis (too little to judge).
        stall_gradient: optimizer stall — max |∇L| at an early line-search stop at or above
            this: 1000× the default ``train.lbfgs_tolerance_grad`` (1e-9), so the stop is not
            the gradient test by another name. Set by that reasoning, not calibrated on runs.
        causality: causality violation — the earliest quarter's mean squared pde residual at
            least this multiple of the latest quarter's (an order of magnitude). Set by
            reasoning, not yet calibrated on held-out runs.
        slow_decades: ill-conditioning — a first-order-only run whose weighted loss fell
            by less than this many decades over the second half of its evaluations (while
            falling by more than ``plateau``). Set by reasoning (one decade per half-run is
            what the shipped Adam phases exceed before their quasi-Newton phase takes
            over), not yet calibrated.
        spectral_share / feature_share: spectral bias — the pde residual's largest octave
            band (above the lowest) holds at least ``spectral_share`` of its energy while
            the last hidden features hold at most ``feature_share`` of theirs there. By
            reasoning (most of the residual, next to none of the features), not yet
            calibrated.
    """

    plateau: float = 0.02
    stuck: float = 0.10
    trivial_stuck: float = 0.10
    unsolved: float = 0.10
    dominance: float = 10.0
    elasticity: float = 1e-3
    layer_ratio: float = 1e3
    growth: float = 1e3
    collapse: float = 1e-3
    frozen_drift: float = 0.1
    conflict: float = -0.5
    conflict_stall: float = 0.02
    rank_collapsed: float = 1.05
    rank_before: float = 1.5
    min_rows: int = 8
    stall_gradient: float = 1e-6
    causality: float = 10.0
    slow_decades: float = 1.0
    spectral_share: float = 0.5
    feature_share: float = 0.01


@dataclass(frozen=True)
class Finding:
    """One named problem of a run.

    Attributes:
        kind: the mechanism, a key of :data:`TITLES` (``imbalance``, ``trivial_solution``,
            ``vanishing``, ``exploding``, ``stagnation``, ``conflict``, ``rank_collapse``,
            ``causality``, ``optimizer_stall``, ``ill_conditioning``, ``spectral_bias``).
        steps: first and last training step of the windows where it holds.
        layer: ``"layer<i>"`` where the evidence is strongest (``"all"``: network-wide).
        term: the loss term concerned, or ``"a|b"`` for a pair.
        evidence: the numbers behind it (medians over the strongest window).
        message: one sentence with those numbers.
        suggestion: what to change.
        layers: every layer affected (vanishing/exploding), else just ``layer``.
        window: first and last step of the strongest window, where ``layer`` and the
            evidence numbers were measured.
        remedy: config overrides the toolkit can apply (``"key=value"``, as ``--set`` takes
            them); empty where no config option cures it.
        source: where the mechanism is described (:data:`SOURCES`).
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
    remedy: tuple[str, ...] = field(default=())
    source: str = ""


TITLES = {"imbalance": "Loss-term imbalance", "trivial_solution": "Trivial-solution trap",
          "vanishing": "Vanishing gradients",
          "exploding": "Exploding gradients", "stagnation": "Stagnation",
          "conflict": "Conflicting terms", "rank_collapse": "Rank collapse",
          "causality": "Causality violation", "optimizer_stall": "Optimizer stall",
          "ill_conditioning": "Ill-conditioning", "spectral_bias": "Spectral bias"}

# The documented vocabulary of mechanisms (the keys of TITLES) and where each is described.
SOURCES = {
    "imbalance": "Wang, Teng & Perdikaris 2021, Understanding and mitigating gradient flow "
                 "pathologies in PINNs, SIAM J. Sci. Comput. 43(5)",
    "trivial_solution": "Rohrhofer, Posch, Gößnitzer & Geiger 2023, On the role of fixed "
                        "points of dynamical systems in training physics-informed neural "
                        "networks, TMLR",
    "vanishing": "Glorot & Bengio 2010, Understanding the difficulty of training deep "
                 "feedforward neural networks, AISTATS",
    "exploding": "Pascanu, Mikolov & Bengio 2013, On the difficulty of training recurrent "
                 "neural networks, ICML",
    "stagnation": "Rathore, Lei, Frangella, Lu & Udell 2024, Challenges in training PINNs: a "
                  "loss landscape perspective, ICML",
    "conflict": "Wang, Bhartari, Li & Perdikaris 2025, Gradient alignment in physics-informed "
                "neural networks: a second-order optimization perspective, arXiv 2502.00604",
    "rank_collapse": "pinnsketch monitor heuristic (no published mechanism)",
    "causality": "Wang, Sankaran & Perdikaris 2024, Respecting causality for training "
                 "physics-informed neural networks, CMAME 421",
    "optimizer_stall": "Rathore, Lei, Frangella, Lu & Udell 2024, Challenges in training "
                       "PINNs: a loss landscape perspective, ICML",
    "ill_conditioning": "Rathore, Lei, Frangella, Lu & Udell 2024, Challenges in training "
                        "PINNs: a loss landscape perspective, ICML; Krishnapriyan, Gholami, "
                        "Zhe, Kirby & Mahoney 2021, Characterizing possible failure modes in "
                        "physics-informed neural networks, NeurIPS",
    "spectral_bias": "Rahaman et al. 2019, On the spectral bias of neural networks, ICML; "
                     "Wang, Wang & Perdikaris 2021, On the eigenvector bias of Fourier feature "
                     "networks, CMAME 384",
}


# ------------------------------------------------------------------------------------------
# Robust window summaries (NaN-aware without numpy's all-NaN warnings)
# ------------------------------------------------------------------------------------------
