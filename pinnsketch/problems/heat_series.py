"""Analytic series solutions of the heat equation with zero Dirichlet data."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["heat_1d_series", "heat_2d_series"]


def heat_1d_series(x: np.ndarray, t: np.ndarray, *, alpha: float,
                   coefficients: Sequence[float], length: float = 1.0) -> np.ndarray:
    """u(x, t) = Σ_k b_k e^{−α(kπ/L)² t} sin(kπx/L), k = 1..len(coefficients).

    Solves u_t = α u_xx on [0, L], u(0, t) = u(L, t) = 0, u(x, 0) = Σ b_k sin(kπx/L).
    ``x`` and ``t`` broadcast; the result has their broadcast shape.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    x, t = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64))
    u = np.zeros(x.shape)
    for k, b in enumerate(coefficients, start=1):
        wave = k * np.pi / length
        u += b * np.exp(-alpha * wave ** 2 * t) * np.sin(wave * x)
    return u


def heat_2d_series(x: np.ndarray, y: np.ndarray, t: np.ndarray, *, alpha: float,
                   modes: Sequence[tuple[int, int, float]]) -> np.ndarray:
    """u = Σ a e^{−απ²(i²+j²)t} sin(iπx) sin(jπy) over ``modes`` = [(i, j, a), …].

    Solves u_t = α Δu on [0, 1]² with zero Dirichlet data.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    x, y, t = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (x, y, t)))
    u = np.zeros(x.shape)
    for i, j, a in modes:
        u += a * np.exp(-alpha * np.pi ** 2 * (i * i + j * j) * t) * np.sin(i * np.pi * x) * np.sin(j * np.pi * y)
    return u
