"""Time marching (Krishnapriyan, Gholami, Zhe, Kirby & Mahoney 2021, "Characterizing
possible failure modes in physics-informed neural networks", NeurIPS; Wight & Zhao 2021,
"Solving Allen-Cahn and Cahn-Hilliard equations using the adaptive physics informed neural
networks"): the Adam phase is split into K equal stages and in stage k the pde and bc points
are drawn in the growing window [t0, t0 + (k+1)/K · (t1 − t0)], so the network fits the early
times, which the initial condition determines, before the later ones.

One network covers every window and the initial condition stays the exact one: this is the
growing-window form of time marching, not sequence-to-sequence learning with a network per
window. The window is a function of the Adam step count alone (nothing to checkpoint); the
points are redrawn when a stage begins, and the phase after Adam sees the whole interval.
"""
from __future__ import annotations

__all__ = ["TimeMarching"]


class TimeMarching:
    """The time window of each Adam step.

    Args:
        windows: K ≥ 1, the number of stages (1: the whole interval throughout).
        adam_steps: the length of the Adam phase the stages divide.
    """

    def __init__(self, windows: int, adam_steps: int):
        if windows < 1 or adam_steps < 0:
            raise ValueError(f"time marching: windows {windows!r} must be >= 1 and adam_steps "
                             f"{adam_steps!r} >= 0")
        self.windows, self.adam_steps = windows, adam_steps

    def stage(self, adam_done: int) -> int:
        """The stage k in [0, K) of Adam step ``adam_done`` (K − 1 after the phase)."""
        if adam_done >= self.adam_steps:
            return self.windows - 1
        return adam_done * self.windows // self.adam_steps

    def fraction(self, adam_done: int) -> float:
        """(k + 1) / K: the share of the time interval the points are drawn from."""
        return (self.stage(adam_done) + 1) / self.windows

    def starts_stage(self, adam_done: int) -> bool:
        """Whether Adam step ``adam_done`` (> 0) is the first of a new stage."""
        return (0 < adam_done < self.adam_steps
                and self.stage(adam_done) != self.stage(adam_done - 1))
