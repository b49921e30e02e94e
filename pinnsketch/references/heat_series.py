"""Analytic series solutions of the heat equation with zero Dirichlet data.

Each sine mode of the initial state decays independently at the rate α·(its wavenumber)², so
a finite sine series is an exact solution: nothing is truncated.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pinnsketch.references.arguments import check_positive, is_finite_real

__all__ = ["heat_1d_series", "heat_2d_series"]


def heat_1d_series(x: np.ndarray, t: np.ndarray, *, alpha: float, coefficients: Sequence[float],
                   length: float = 1.0) -> np.ndarray:
    """u(x, t) = Σ_k b_k e^{−α(kπ/L)² t} sin(kπx/L), k = 1..K, K = len(coefficients).

    Solves u_t = α u_xx on [0, L] with u(0, t) = u(L, t) = 0 and u(x, 0) = Σ_k b_k sin(kπx/L).

    Args:
        x: positions (length units), any shape broadcastable with ``t``.
        t: times ≥ 0 (time units), broadcastable with ``x``.
        alpha: diffusivity α > 0 (length²/time).
        coefficients: b_1..b_K, the sine coefficients of the initial state, K ≥ 1.
        length: L > 0, the interval length (default 1).

    Returns:
        float64 array of the broadcast shape of ``x`` and ``t``.

    Raises:
        ValueError: for alpha or length not finite and > 0, empty or non-finite
            coefficients, or non-finite x, t or t < 0.
    """
    check_positive("alpha", alpha)
    check_positive("length", length)
    try:
        b = np.asarray(coefficients, dtype=np.float64)
    except (TypeError, ValueError):
        b = np.empty(0)  # not numbers: reported below
    if b.ndim != 1 or b.size == 0 or not np.isfinite(b).all():
        raise ValueError(f"coefficients must be a non-empty sequence of finite numbers, "
                         f"got {coefficients!r}")
    x, t = _broadcast_points(x=x, t=t)
    wavenumber = np.arange(1, b.size + 1) * (np.pi / length)               # (K,)
    # Sum over the trailing mode axis: (..., K) → (...).
    decay = np.exp(-alpha * wavenumber ** 2 * t[..., None])
    return (b * decay * np.sin(wavenumber * x[..., None])).sum(axis=-1)


def heat_2d_series(x: np.ndarray, y: np.ndarray, t: np.ndarray, *, alpha: float,
                   modes: Sequence[tuple[int, int, float]]) -> np.ndarray:
    """u(x, y, t) = Σ a e^{−απ²(i²+j²)t} sin(iπx) sin(jπy) over ``modes`` = [(i, j, a), …].

    Solves u_t = α(u_xx + u_yy) on [0, 1]² with u = 0 on the boundary and
    u(x, y, 0) = Σ a sin(iπx) sin(jπy).

    Args:
        x, y: positions (length units), broadcastable with each other and ``t``.
        t: times ≥ 0 (time units).
        alpha: diffusivity α > 0 (length²/time).
        modes: at least one ``(i, j, a)``: mode numbers i, j ≥ 1 of integer value and a
            finite amplitude a.

    Returns:
        float64 array of the broadcast shape of ``x``, ``y`` and ``t``.

    Raises:
        ValueError: for alpha not finite and > 0, an empty ``modes`` or a malformed mode,
            or non-finite x, y, t or t < 0.
    """
    check_positive("alpha", alpha)
    if len(modes) == 0:
        raise ValueError("modes must hold at least one (i, j, a), got an empty sequence")
    for mode in modes:
        _check_mode(mode)
    x, y, t = _broadcast_points(x=x, y=y, t=t)
    i, j, a = (np.array([mode[n] for mode in modes], dtype=np.float64) for n in range(3))
    # Sum over the trailing mode axis: (..., M) → (...).
    decay = np.exp(-alpha * np.pi ** 2 * (i ** 2 + j ** 2) * t[..., None])
    return (a * decay * np.sin(i * np.pi * x[..., None]) * np.sin(j * np.pi * y[..., None])).sum(axis=-1)


def _check_mode(mode) -> None:
    try:
        i, j, a = mode
    except (TypeError, ValueError):
        i = j = a = None  # not a triple: reported below
    if not (all(is_finite_real(n) for n in (i, j, a))
            and all(float(n).is_integer() and n >= 1 for n in (i, j))):
        raise ValueError(f"modes: got {mode!r}, each mode must be (i, j, a) with "
                         f"integer-valued i, j >= 1 and a finite amplitude a")


def _broadcast_points(**arrays: np.ndarray) -> list[np.ndarray]:
    """The float64 arrays broadcast together; all finite, the last (time) ≥ 0."""
    names = list(arrays)
    values = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays.values()))
    for name, value in zip(names, values):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} must be finite, got {float(value[~np.isfinite(value)].ravel()[0])!r}")
    if (values[-1] < 0).any():
        raise ValueError(f"{names[-1]} must be >= 0, got {float(values[-1].min())!r}")
    return values
