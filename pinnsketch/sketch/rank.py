"""Adaptive sketch rank: raise r when the estimated error stays high, lower it when it stays low.

Policy of :class:`RankController` (one :meth:`~RankController.step` per check):
  1. Classify the check's relative error estimate e: *above* (e > tol), *below*
     (e < lower·tol, "well below") or *inside* the band; NaN counts as no information.
     Consecutive above (below) checks are counted; any other check resets the count.
  2. After ``patience`` consecutive above checks, raise r; after ``patience``·b consecutive
     below checks, lower it; the count then restarts, so r moves at most once per
     ``patience`` checks. r never leaves [r_min, r_max]. b is a backoff, 1 at first: a
     raise right after a lowering means the lower rank did not suffice (a failed probe), so
     b doubles (up to 1024); a raise after a raise or a lowering after a lowering resets it.
  3. The new rank. With a *profile* — estimated relative errors of every truncation rank
     1..K, :meth:`pinnsketch.sketch.three_sketch.ThreeSketch.scree` — the new rank is the
     smallest one whose estimate is at most ``target`` = √lower · tol (the geometric middle
     of the band, so the new rank does not re-trigger at once); raising, when no rank up to
     K qualifies, it is K + 1 (the sketch saw K directions and none sufficed). Lowering
     never goes below the smallest qualifying rank, so exactly-low-rank data do not
     oscillate. Without a profile: raise to ⌈growth·r⌉ (×2, as Trilinos ROL), lower to
     r − 1 — this can oscillate between r* − 1 and r* on exactly rank-r* data, since a
     scalar says nothing about the error at the lower rank.

What happens to the sketches is the sketch's business (:meth:`ThreeSketch.resize`): a lower
rank truncates in place (exact, no re-warm); a higher rank re-draws the test matrices and
restarts the sketches (re-warm).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["RankController"]


class RankController:
    """Hysteresis controller of a sketch rank within [r_min, r_max]; module docstring.

    Args:
        r_min, r_max: bounds, 1 ≤ r_min ≤ r_max.
        tol: relative error tolerance > 0.
        patience: consecutive out-of-band checks before a change (≥ 1).
        rank: initial rank (default r_min), within the bounds.
        lower: a check is "well below" when e < lower·tol; in (0, 1), default 1/4.
        growth: raise factor without a profile (> 1, default 2).

    Memory: a few Python numbers; ``step`` reads its inputs on the host (one sync per check).

    Raises:
        ValueError: any argument out of range (the message names it and the allowed range).
    """

    def __init__(self, r_min: int, r_max: int, tol: float, patience: int = 3, *,
                 rank: int | None = None, lower: float = 0.25, growth: float = 2.0):
        for name, value, low in (("r_min", r_min, 1), ("r_max", r_max, r_min),
                                 ("patience", patience, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name}: got {value!r}, must be an integer >= {low}")
        rank = r_min if rank is None else rank
        if not isinstance(rank, int) or isinstance(rank, bool) or not r_min <= rank <= r_max:
            raise ValueError(f"rank: got {rank!r}, must be an integer in [{r_min}, {r_max}]")
        for name, value, ok, allowed in (
                ("tol", tol, 0.0 < tol < math.inf, "a finite float > 0"),
                ("lower", lower, 0.0 < lower < 1.0, "a float in (0, 1)"),
                ("growth", growth, 1.0 < growth < math.inf, "a finite float > 1")):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok:
                raise ValueError(f"{name}: got {value!r}, must be {allowed}")
        self.r_min, self.r_max, self.patience = r_min, r_max, patience
        self.tol, self.lower, self.growth = float(tol), float(lower), float(growth)
        self.rank = rank
        self.above = self.below = 0     # consecutive checks above / well below the band
        self.changes = 0
        self.backoff = 1                # multiplies the patience for lowering
        self.last_move = 0              # +1 raise, −1 lowering, 0 none yet
        self.previous = rank            # the rank before the last move

    @property
    def target(self) -> float:
        """Error aimed at when a profile picks the new rank: √lower · tol."""
        return math.sqrt(self.lower) * self.tol

    def step(self, rel_err: float | torch.Tensor,
             profile: torch.Tensor | Sequence[float] | None = None) -> int:
        """Record one check; return the rank to use from now on (the same or a new one).

        Args:
            rel_err: estimated relative error at the current rank (a float or 0-dim tensor;
                read on the host).
            profile: optional estimated relative errors of ranks 1..K (K ≥ 1), e.g.
                ``ThreeSketch.scree()``; lets the controller jump to the right rank.
        """
        error = float(rel_err)
        if math.isnan(error):
            return self.rank
        if error > self.tol:
            self.above, self.below = self.above + 1, 0
        elif error < self.lower * self.tol:
            self.above, self.below = 0, self.below + 1
        else:
            self.above = self.below = 0
        if self.above < self.patience and self.below < self.patience * self.backoff:
            return self.rank
        raising = self.above >= self.patience
        self.above = self.below = 0
        if isinstance(profile, torch.Tensor):
            profile = profile.tolist()
        errors = None if profile is None else [float(e) for e in profile]
        fit = None
        if errors:
            fit = next((r for r, e in enumerate(errors, start=1) if e <= self.target), None)
        if raising:
            if errors:
                new = fit if fit is not None else len(errors) + 1
            elif self.last_move == -1:
                new = self.previous                     # that rank sufficed a moment ago
            else:
                new = math.ceil(self.growth * self.rank)
            new = min(self.r_max, max(self.rank + 1, new))
        else:
            if errors:
                new = self.rank if fit is None else min(self.rank, fit)
            else:
                new = self.rank - 1
            new = max(self.r_min, new)
        if new != self.rank:
            move = 1 if new > self.rank else -1
            if move == 1 and self.last_move == -1:
                self.backoff = min(2 * self.backoff, 1024)          # failed probe
            elif move == self.last_move:
                self.backoff = 1
            self.previous, self.rank, self.last_move = self.rank, new, move
            self.changes += 1
        return self.rank

    def state_dict(self) -> dict[str, Any]:
        """Settings, rank and counters (plain Python)."""
        return {"r_min": self.r_min, "r_max": self.r_max, "tol": self.tol,
                "patience": self.patience, "lower": self.lower, "growth": self.growth,
                "rank": self.rank, "above": self.above, "below": self.below,
                "changes": self.changes, "backoff": self.backoff, "last_move": self.last_move,
                "previous": self.previous}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output (settings included, as torch.optim does).

        Raises:
            ValueError: on a missing key or a rank outside the stored bounds.
        """
        missing = set(self.state_dict()) - set(state)
        if missing:
            raise ValueError(f"state: missing keys {sorted(missing)}")
        if not state["r_min"] <= state["rank"] <= state["r_max"]:
            raise ValueError(f"state['rank']: got {state['rank']!r}, outside "
                             f"[{state['r_min']}, {state['r_max']}]")
        for key in self.state_dict():
            setattr(self, key, state[key])

    def __repr__(self) -> str:
        return (f"RankController(rank={self.rank}, bounds=[{self.r_min}, {self.r_max}], "
                f"tol={self.tol}, patience={self.patience})")
