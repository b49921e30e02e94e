"""Curriculum regularisation (Krishnapriyan, Gholami, Zhe, Kirby & Mahoney 2021,
"Characterizing possible failure modes in physics-informed neural networks", NeurIPS): a
problem option ramped from an easy value to the target over the first Adam steps, e.g.
convection β from 1 to 40, so the network meets the hard problem from a good start.

    value(k) = start + (target − start) · min(1, k / steps)   at Adam step k,

the target being the option's configured value. The value is a function of the step count
alone (nothing to checkpoint); the reference, evaluations after the ramp and the phase after
Adam use the target.
"""
from __future__ import annotations

import dataclasses

from pinnsketch.problems.base import Problem

__all__ = ["Curriculum"]


class Curriculum:
    """Ramp ``problem.options.<option>`` from ``start`` to its value over ``steps`` steps.

    Raises:
        ValueError: ``option`` is not a float option of the problem, or ``steps`` < 1.
    """

    def __init__(self, problem: Problem, option: str, start: float, steps: int):
        names = [f.name for f in dataclasses.fields(problem.Options)
                 if isinstance(getattr(problem.options, f.name), float)]
        if option not in names or steps < 1:
            raise ValueError(f"curriculum: option {option!r} must be a float option of "
                             f"{type(problem).__name__} (options: {', '.join(names) or 'none'}) "
                             f"and steps {steps!r} >= 1")
        self.problem, self.option, self.start, self.steps = problem, option, start, steps
        self.target = getattr(problem.options, option)
        self.apply(0)  # the start value must be valid for the problem (its __post_init__)
        self.finish()

    def apply(self, step: int) -> float:
        """Set the option to its value at Adam step ``step`` (validated by the problem's
        Options) and return it."""
        value = self.start + (self.target - self.start) * min(1.0, step / self.steps)
        self._set(value)
        return value

    def finish(self) -> None:
        """Put the target back (the end of the Adam phase, or an interrupted run)."""
        self._set(self.target)

    def _set(self, value: float) -> None:
        self.problem.options = dataclasses.replace(self.problem.options, **{self.option: value})
