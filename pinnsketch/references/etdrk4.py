"""Fourier pseudo-spectral ETDRK4 for periodic 1D evolution equations u_t = L u + N(u).

Cox & Matthews 2002, with the coefficients evaluated by the contour integrals of Kassam &
Trefethen 2005 (M points on a unit circle around each hL, which removes the cancellation of
the closed forms at small |hL|). The state is the real FFT of u on n equispaced points;
``linear`` is the diagonal symbol of L on those modes, ``nonlinear`` maps û to the transform
of N(u).

:class:`SpectralSolution` keeps û at snapshot times and evaluates u anywhere: exact
trigonometric interpolation in x, a cubic spline in t.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.interpolate import CubicSpline

__all__ = ["SpectralSolution", "etdrk4", "wavenumbers"]


def wavenumbers(n: int, length: float) -> np.ndarray:
    """Angular wavenumbers ``(n // 2 + 1,)`` of a real FFT of n points on a period ``length``."""
    return 2 * np.pi * np.fft.rfftfreq(n, d=length / n)


def etdrk4(u0_hat: np.ndarray, linear: np.ndarray,
           nonlinear: Callable[[np.ndarray], np.ndarray], *, dt: float, steps: int,
           save_every: int, contour_points: int = 32) -> np.ndarray:
    """Integrate û' = L û + N̂(û) with ETDRK4.

    Args:
        u0_hat: initial modes ``(m,)`` complex.
        linear: the symbol of L on the modes ``(m,)``, real or complex.
        nonlinear: û ``(m,)`` → N̂(û) ``(m,)``.
        dt: time step; steps: how many; save_every: steps between snapshots.
        contour_points: M of the contour integrals.

    Returns:
        Snapshots ``(steps // save_every + 1, m)`` complex, the first the initial state.
    """
    hl = dt * linear
    e, e2 = np.exp(hl), np.exp(hl / 2)
    # A real L has real coefficients: the upper half circle and the real part suffice (the
    # contour is symmetric about the real axis). A complex one (dispersion: L = i δ² k³)
    # needs the whole circle and keeps them complex.
    real = np.isrealobj(linear)
    turn = np.pi if real else 2 * np.pi
    roots = np.exp(1j * turn * (np.arange(1, contour_points + 1) - 0.5) / contour_points)
    lr = hl[:, None] + roots[None, :]
    mean = lambda z: np.mean(z, axis=1).real if real else np.mean(z, axis=1)
    q = dt * mean((np.exp(lr / 2) - 1) / lr)
    f1 = dt * mean((-4 - lr + np.exp(lr) * (4 - 3 * lr + lr ** 2)) / lr ** 3)
    f2 = dt * mean((2 + lr + np.exp(lr) * (-2 + lr)) / lr ** 3)
    f3 = dt * mean((-4 - 3 * lr - lr ** 2 + np.exp(lr) * (4 - lr)) / lr ** 3)
    v = np.array(u0_hat, dtype=np.complex128)
    out = [v.copy()]
    for step in range(1, steps + 1):
        nv = nonlinear(v)
        a = e2 * v + q * nv
        na = nonlinear(a)
        b = e2 * v + q * na
        nb = nonlinear(b)
        c = e2 * a + q * (2 * nb - nv)
        nc = nonlinear(c)
        v = e * v + nv * f1 + 2 * (na + nb) * f2 + nc * f3
        if step % save_every == 0:
            out.append(v.copy())
    return np.stack(out)


class SpectralSolution:
    """u(x, t) from snapshots of real-FFT modes on a periodic interval.

    Args:
        times: snapshot times ``(S,)`` increasing.
        modes: ``(S, n // 2 + 1)`` real-FFT coefficients of u on n points.
        n: number of grid points; x0, length: the interval [x0, x0 + length).
    """

    def __init__(self, times: np.ndarray, modes: np.ndarray, n: int, x0: float, length: float):
        self.times, self.n, self.x0, self.length = times, n, x0, length
        self._modes = modes
        steps = np.diff(times)
        self._uniform = bool(len(times) > 1 and np.allclose(steps, steps[0], rtol=1e-12))
        # Trigonometric interpolation: u(x) = Σ_k w_k Re(û_k e^{ik(x−x0)}) / n with weights
        # 1 for k = 0 (and Nyquist), 2 for the others (the conjugate half).
        weights = np.full(modes.shape[1], 2.0)
        weights[0] = 1.0
        if n % 2 == 0:
            weights[-1] = 1.0
        self._spline = CubicSpline(times, modes * weights / n, axis=0)
        self._k = wavenumbers(n, length)

    def __call__(self, x: np.ndarray, t: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """u at points ``x``, ``t`` (same shape, t within the snapshot times).

        Points on the solver's grid at a snapshot time (an evaluation grid that is a sub-grid)
        are read from an inverse FFT of that snapshot; the others are interpolated.
        """
        x, t = np.broadcast_arrays(np.asarray(x, float), np.asarray(t, float))
        flat_x, flat_t = x.ravel(), t.ravel()
        out = np.empty(flat_x.shape)
        snapshot = (flat_t - self.times[0]) / (self.times[1] - self.times[0])
        node = (flat_x - self.x0) / self.length * self.n
        on_grid = ((np.abs(snapshot - np.rint(snapshot)) < 1e-9)
                   & (np.abs(node - np.rint(node)) < 1e-9) & self._uniform)
        for s in np.unique(np.rint(snapshot[on_grid]).astype(int)):
            rows = on_grid & (np.rint(snapshot).astype(int) == s)
            values = np.fft.irfft(self._modes[s], n=self.n)
            out[rows] = values[np.rint(node[rows]).astype(int) % self.n]
        rest = np.flatnonzero(~on_grid)
        for lo in range(0, len(rest), chunk):
            rows = rest[lo:lo + chunk]
            coefficients = self._spline(flat_t[rows])                        # (c, m)
            phases = np.exp(1j * np.outer(flat_x[rows] - self.x0, self._k))  # (c, m)
            out[rows] = (coefficients * phases).real.sum(axis=1)
        return out.reshape(x.shape)
