"""Gradient statistics of the monitor, and the bounded history that keeps them for a whole run.

Every statistic here is a pure function of tensors (batched over leading dimensions), so the
monitor, the tests and the diagnosis compute them the same way. Definitions (METHOD.md §4;
G is the gradient ∂L_τ/∂W_ℓ of one loss term τ with respect to one weight matrix, d_out × d_in,
and Ḡ its bias-corrected exponential moving average over checks):

- **norm**: ‖G‖_F (exact, every check); **EMA norm**: ‖Ḡ‖_F (from the sketch).
- **diversity**: effective rank exp(H(p)), p_j = σ_j² / Σσ², of Ḡ's singular values σ
  (1 for a rank-one matrix, min(d_out, d_in) for a flat spectrum); stable rank Σσ²/σ₁².
- **stability** (drift): the largest principal angle, in degrees, between the leading
  singular subspaces of Ḡ at two successive spectral evaluations (left and right
  subspaces; the larger of the two). 0° is a frozen subspace, 90° a new one.
- **alignment**: cos(vec G_a, vec G_b) between two terms per layer and over the whole network,
  the largest principal angle between their leading subspaces, and the alignment score of
  Wang et al. 2025, A = 2‖mean_τ G_τ/‖G_τ‖‖² − 1 (1: all terms agree, −1: two opposed).
- **imbalance** (Wang, Teng & Perdikaris 2021, Algorithm 1): λ̂ = max|∇_W L_ref| / mean|∇_W L_τ|
  per layer (their Algorithm takes max and mean over all weights; the network-wide value is
  kept too). L_ref is the PDE residual term; the gradients are those of the unweighted terms,
  so λ̂ is the weight their learning-rate annealing would give τ.
- **SNR**: ‖Ḡ‖_F / sqrt(EMA of ‖G‖²_F) ∈ [0, 1] — near 1 the term pushes the layer in a
  consistent direction, near 0 its gradient is noise that averages out.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch

__all__ = ["CHECK_STATS", "DecimatedHistory", "MonitorHistory", "SPECTRAL_STATS",
           "alignment_score", "effective_rank", "history_columns", "largest_angle",
           "principal_angles", "stable_rank"]

_TINY = 1e-30  # guards divisions by an exactly-zero norm (an unused layer or a solved term)


def effective_rank(sigma: torch.Tensor) -> torch.Tensor:
    """exp of the Shannon entropy of σ_j²/Σσ² (Roy & Vetterli 2007, on energies).

    Args:
        sigma: singular values ``(..., k)``, non-negative.

    Returns:
        ``(...)``: in [1, k]; NaN where all σ are 0 (no gradient: no spectrum).
    """
    energy = sigma.square()
    total = energy.sum(-1, keepdim=True)
    p = energy / total
    entropy = -(p * torch.log(p.clamp_min(_TINY))).sum(-1)
    return torch.where(total.squeeze(-1) > 0, entropy.exp(), torch.full_like(entropy, math.nan))


def stable_rank(sigma: torch.Tensor) -> torch.Tensor:
    """Σσ²/σ₁² of singular values ``(..., k)`` sorted in descending order; ``(...)``."""
    energy = sigma.square()
    return energy.sum(-1) / energy[..., 0].clamp_min(_TINY)


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Principal angles in degrees between the column spans of ``a`` and ``b``.

    Args:
        a, b: orthonormal bases ``(..., d, r_a)`` and ``(..., d, r_b)``.

    Returns:
        ``(..., min(r_a, r_b))`` angles in [0, 90], ascending (cosines are the singular
        values of aᵀb, Björck & Golub 1973).
    """
    cosines = torch.linalg.svdvals(a.transpose(-1, -2) @ b).clamp(0.0, 1.0)  # descending
    return torch.rad2deg(torch.arccos(cosines))


def largest_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The largest principal angle (degrees) between two subspaces; ``(...)``.

    Accurate also for small angles: it is arcsin of the distance ‖(I − aaᵀ)b‖₂ rather than
    arccos of a cosine near 1 (which loses half the digits).
    """
    residual = b - a @ (a.transpose(-1, -2) @ b)
    sine = torch.linalg.matrix_norm(residual, ord=2).clamp(0.0, 1.0)
    return torch.rad2deg(torch.arcsin(sine))


def alignment_score(cosines: torch.Tensor) -> torch.Tensor:
    """Wang et al. 2025: A = 2‖(1/T) Σ_τ u_τ‖² − 1 with u_τ = G_τ/‖G_τ‖.

    Args:
        cosines: pairwise cosine matrices ``(..., T, T)`` (ones on the diagonal).

    Returns:
        ``(...)`` in [−1, 1]; for two terms it equals their cosine.
    """
    t = cosines.shape[-1]
    return 2.0 * cosines.sum((-1, -2)) / (t * t) - 1.0


class DecimatedHistory:
    """A fixed-capacity record of per-check statistic vectors over a whole run.

    Each check adds a vector of ``width`` numbers. Checks are averaged in groups of
    ``stride`` into one row; when all ``capacity`` rows are full, adjacent rows are averaged
    pairwise (halving the rows in use) and the stride doubles. So the history always spans
    the whole run in capacity/2 to capacity − 1 rows, and its memory —
    ``capacity × (width + 1)`` numbers plus one pending row — never grows with the number of
    checks. Averaging (not sub-sampling) means no check is dropped: a row is the mean of the
    checks it covers, which a plot or a finding can read as a smoothed value.

    NaN entries (a statistic not yet defined, e.g. a drift before the second spectral
    evaluation) stay NaN in the rows they reach.

    Args:
        capacity: rows kept (even, ≥ 2).
        width: statistics per check.
        dtype: storage precision of the rows (float32 keeps 7 digits, plenty for a monitor).
        device: where the rows live (the device of the gradients, so adding never syncs).
    """

    def __init__(self, capacity: int, width: int, *, dtype: torch.dtype = torch.float32,
                 device: torch.device | str = "cpu"):
        if capacity < 2 or capacity % 2:
            raise ValueError(f"history capacity: got {capacity}, must be an even number >= 2")
        self.capacity, self.width = capacity, width
        self.rows = torch.full((capacity, width), math.nan, dtype=dtype, device=device)
        self.steps = torch.zeros(capacity, dtype=torch.int64)  # last step each row covers
        self.used = 0
        self.stride = 1
        # The row being filled: a float64 running sum, so long strides lose no digits.
        self._pending = torch.zeros(width, dtype=torch.float64, device=device)
        self._pending_count = 0

    def add(self, step: int, values: torch.Tensor) -> None:
        """Add one check's statistics ``(width,)`` taken at training step ``step``."""
        self._pending += values
        self._pending_count += 1
        if self._pending_count < self.stride:
            return
        self.rows[self.used] = self._pending / self._pending_count
        self.steps[self.used] = step
        self.used += 1
        self._pending.zero_()
        self._pending_count = 0
        if self.used == self.capacity:
            # Decimate as soon as the rows are full, so every row always covers `stride`
            # checks: row i is the mean of checks [i·stride, (i+1)·stride).
            self._decimate()

    def _decimate(self) -> None:
        half = self.capacity // 2
        self.rows[:half] = 0.5 * (self.rows[0::2] + self.rows[1::2])
        self.rows[half:] = math.nan
        self.steps[:half] = self.steps[1::2].clone()
        self.used = half
        self.stride *= 2

    def view(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The committed rows: steps ``(n,)`` int64 and values ``(n, width)``."""
        return self.steps[:self.used].clone(), self.rows[:self.used].clone()

    def nbytes(self) -> int:
        """Bytes held: the rows, their steps and the pending row (constant in time)."""
        return sum(t.numel() * t.element_size() for t in (self.rows, self.steps, self._pending))

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows.clone(), "steps": self.steps.clone(), "used": self.used,
                "stride": self.stride, "pending": self._pending.clone(),
                "pending_count": self._pending_count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if tuple(state["rows"].shape) != (self.capacity, self.width):
            raise ValueError(f"history state has shape {tuple(state['rows'].shape)}, this "
                             f"history is ({self.capacity}, {self.width})")
        self.rows.copy_(state["rows"])
        self.steps.copy_(state["steps"])
        self.used, self.stride = int(state["used"]), int(state["stride"])
        self._pending.copy_(state["pending"])
        self._pending_count = int(state["pending_count"])


# Statistics a check records: (name, kind), kind = "term" (per layer × term), "pair" (per layer
# × pair of terms a|b), "other" (per layer × term other than the imbalance reference). The
# imbalance and cosine also get a network-wide column (layer "all").
CHECK_STATS = (("norm", "term"), ("imbalance", "other"), ("cosine", "pair"))
# Read from the sketches every spectral_every checks and carried in between.
SPECTRAL_STATS = (("ema_norm", "term"), ("snr", "term"), ("erank", "term"),
                  ("drift", "term"), ("subspace_angle", "pair"))


def history_columns(layers: Sequence[str], terms: Sequence[str],
                    reference: str) -> list[tuple[str, str, str]]:
    """History columns (statistic, layer, term or "a|b"), in the order a check writes them:
    the losses (layer ""), then :data:`CHECK_STATS`, then :data:`SPECTRAL_STATS`."""
    pairs = [f"{a}|{b}" for i, a in enumerate(terms) for b in terms[i + 1:]]
    per_kind = {"term": list(terms), "pair": pairs, "other": [t for t in terms if t != reference]}
    columns = [("loss", "", t) for t in terms]
    for stats in (CHECK_STATS, SPECTRAL_STATS):
        for stat, kind in stats:
            columns += [(stat, layer, key) for layer in layers for key in per_kind[kind]]
            if stat in ("imbalance", "cosine"):
                columns += [(stat, "all", key) for key in per_kind[kind]]
    return columns


class MonitorHistory:
    """A read-only view of a monitor's history (numpy), what figures and the diagnosis read.

    Attributes:
        steps: training step of each row ``(n,)`` (the last check the row covers).
        values: ``(n, len(columns))`` float64.
        columns: :func:`history_columns`.
        shapes: ``{layer: (d_out, d_in)}`` in order; ``layers`` its keys.
        terms, reference: the terms and the imbalance reference term.
        stride: checks per row.
    """

    def __init__(self, steps: np.ndarray, values: np.ndarray,
                 columns: Sequence[tuple[str, str, str]], shapes: Mapping[str, tuple[int, int]],
                 terms: Sequence[str], reference: str, stride: int):
        self.steps, self.values, self.columns = steps, values, list(columns)
        self.shapes, self.layers = dict(shapes), list(shapes)
        self.terms, self.reference, self.stride = tuple(terms), reference, stride
        self._index = {c: i for i, c in enumerate(self.columns)}

    def series(self, stat: str, layer: str, term: str) -> np.ndarray:
        """Values ``(n,)`` of one column: ``layer`` is "layer<i>", "all" or "" (losses);
        ``term`` a term or "a|b" for pair statistics."""
        key = (stat, layer, term)
        if key not in self._index:
            raise KeyError(f"no history column {key}; statistics: "
                           f"{sorted({c[0] for c in self.columns})}")
        return self.values[:, self._index[key]]

    def has(self, stat: str, layer: str, term: str) -> bool:
        return (stat, layer, term) in self._index

    @property
    def pairs(self) -> list[str]:
        return [f"{a}|{b}" for i, a in enumerate(self.terms) for b in self.terms[i + 1:]]
