"""One time window of an evolution problem, for sequence-to-sequence learning.

In sequence-to-sequence time marching (Krishnapriyan, Gholami, Zhe, Kirby & Mahoney 2021)
the interval [t0, t1] is cut into windows [t_k, t_{k+1}] and a network is trained on each in
turn; window k's initial condition is the previous window's network at t_k (the problem's
own u₀ in the first window). :class:`TimeWindow` is that sub-problem: the wrapped problem's
PDE and boundary residuals on the window's space-time box, with the initial data replaced.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch

from pinnsketch.problems.base import TERM_MEASURES, Problem

__all__ = ["TimeWindow", "window_edges"]

Initial = Callable[[torch.Tensor], torch.Tensor]


def window_edges(interval: tuple[float, float], windows: int) -> list[float]:
    """The K + 1 edges t_0 < ... < t_K of ``windows`` equal windows of ``interval``."""
    if windows < 1:
        raise ValueError(f"windows must be >= 1, got {windows}")
    return np.linspace(interval[0], interval[1], windows + 1).tolist()


class TimeWindow(Problem):
    """``problem`` restricted to times [t0, t1].

    Args:
        problem: an evolution problem whose terms are the built-in ones (a second initial
            condition such as a wave's ``ic_t`` would need the previous network's time
            derivative: not supported).
        t0, t1: the window, inside the problem's time interval.
        initial: u₀ of this window at points ``(N, d)`` of its initial slice ``t = t0``
            (the previous window's network, evaluated without gradients); None keeps the
            problem's own initial value (the first window).
    """

    def __init__(self, problem: Problem, t0: float, t1: float, initial: Initial | None = None):
        time = problem.domain.time
        if time is None:
            raise ValueError(f"{type(problem).__name__} is steady: no time windows")
        if not time[0] <= t0 < t1 <= time[1]:
            raise ValueError(f"window [{t0}, {t1}] must lie inside the time interval {time}")
        if dict(problem.term_measures) != TERM_MEASURES:
            raise ValueError(f"{type(problem).__name__} has the terms "
                             f"{sorted(problem.term_measures)}; a time window supports only "
                             f"{sorted(TERM_MEASURES)}")
        super().__init__(problem.options)
        self.problem, self.initial = problem, initial
        self.input_names = problem.input_names
        self.periodic_inputs = problem.periodic_inputs
        self.domain = dataclasses.replace(problem.domain, time=(t0, t1))
        if problem.has_reference:
            self.reference = problem.reference
            if problem.evaluation_grid is not None:
                self.evaluation_grid = self._evaluation_grid

    def pde_residual(self, model, points):
        return self.problem.pde_residual(model, points)

    def boundary_residual(self, model, points):
        return self.problem.boundary_residual(model, points)

    def boundary_value(self, points):
        return self.problem.boundary_value(points)

    def initial_value(self, points):
        if self.initial is None:
            return self.problem.initial_value(points)
        with torch.no_grad():
            return self.initial(points)

    def physics_terms(self, hard_constraints: bool) -> tuple[str, ...]:
        return self.problem.physics_terms(hard_constraints)

    def _evaluation_grid(self) -> tuple[np.ndarray, tuple[int, ...]]:
        """The problem's evaluation grid at its times in [t0, t1] (time is the last input
        and the last grid axis, varying fastest)."""
        points, shape = self.problem.evaluation_grid()
        t0, t1 = self.domain.time
        times = points.reshape(*shape, -1)[(0,) * (len(shape) - 1)][:, -1]
        keep = (times >= t0 - 1e-12) & (times <= t1 + 1e-12)
        rows = np.broadcast_to(keep, shape).reshape(-1)
        return points[rows], (*shape[:-1], int(keep.sum()))
