"""The monitor's bounded history: every check's statistics for a whole run in fixed memory.

:class:`DecimatedHistory` keeps a fixed number of rows (on the monitor's device);
:class:`MonitorHistory` is the read-only numpy view that figures and the diagnosis read.
Column order: :func:`history_columns`.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch

__all__ = ["CHECK_STATS", "DecimatedHistory", "MonitorHistory", "SPECTRAL_STATS",
           "history_columns"]


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
# × pair of terms a|b), "other" (per layer × term other than the imbalance reference), "terms"
# (per layer, all terms together). The imbalance, cosine and alignment also get a
# network-wide column (layer "all"); pairs and alignment exist only with two terms or more.
CHECK_STATS = (("norm", "term"), ("imbalance", "other"), ("cosine", "pair"),
               ("alignment", "terms"))
# Read from Ḡ's spectra every spectral_every checks and carried in between.
SPECTRAL_STATS = (("ema_norm", "term"), ("snr", "term"), ("erank", "term"),
                  ("drift", "term"), ("subspace_angle", "pair"))
_NETWORK_WIDE = ("imbalance", "cosine", "alignment")


def history_columns(layers: Sequence[str], terms: Sequence[str],
                    reference: str) -> list[tuple[str, str, str]]:
    """History columns (statistic, layer, term or "a|b" or "all"), in the order a check writes
    them: the losses and the loss weights in force (layer ""; a weight NaN where the caller
    gave none), then :data:`CHECK_STATS`, then :data:`SPECTRAL_STATS`."""
    pairs = [f"{a}|{b}" for i, a in enumerate(terms) for b in terms[i + 1:]]
    per_kind = {"term": list(terms), "pair": pairs, "terms": ["all"] if pairs else [],
                "other": [t for t in terms if t != reference]}
    columns = [("loss", "", t) for t in terms] + [("weight", "", t) for t in terms]
    for stats in (CHECK_STATS, SPECTRAL_STATS):
        for stat, kind in stats:
            columns += [(stat, layer, key) for layer in layers for key in per_kind[kind]]
            if stat in _NETWORK_WIDE:
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

    def weights_in_force(self, given: Mapping[str, float]) -> dict[str, float]:
        """``{term: w_τ}`` at the last row: the recorded weight where one was recorded and
        it differs from ``given`` by more than the history's float32 rounding (adaptive
        weights move), else the given one (1 where unnamed)."""
        weights = {t: float(given.get(t, 1.0)) for t in self.terms}
        for t in self.terms:
            if len(self.steps) and self.has("weight", "", t):
                last = float(self.series("weight", "", t)[-1])
                if np.isfinite(last) and abs(last - weights[t]) > 1e-6 * abs(weights[t]):
                    weights[t] = last
        return weights

    @property
    def pairs(self) -> list[str]:
        return [f"{a}|{b}" for i, a in enumerate(self.terms) for b in self.terms[i + 1:]]
