"""The Korteweg–de Vries reference: u_t + u u_x + δ² u_xxx = 0 on x ∈ [−1, 1), periodic,
u(x, 0) = cos πx, t ∈ [0, T] (δ² = 0.0025, T = 1: Zabusky & Kruskal 1965 as posed by
Raissi et al. 2019 and the PirateNets benchmark), by Fourier ETDRK4
(:mod:`pinnsketch.references.etdrk4`), cached.

In Fourier modes û_k' = i δ² k³ û_k − (i k / 2) (u²)^_k: the dispersive term is the diagonal
L, the advection the nonlinear part, its square dealiased by the 2/3 rule. The solution is
analytic, so convergence in the modes is spectral. Checks (``tests/test_zoo_kdv.py``): a
soliton u = 3c sech²(√c (x − ct) / (2δ)), an exact solution on the line whose periodic
tails are below 1e-8, is reproduced to 3e-8; mass ∫u and momentum ∫u² are conserved; at the
defaults (256 modes, dt = 1e-4) twice the modes and half the dt change u on the 512 × 201
evaluation grid by 1.1e-12 relative (L2).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from pinnsketch.references.arguments import check_modes, check_positive, snapshot_stride
from pinnsketch.references.cache import cached_arrays
from pinnsketch.references.etdrk4 import SpectralSolution, etdrk4, wavenumbers

__all__ = ["kdv_modes", "kdv_solution"]

SNAPSHOT_DT = 5e-3  # snapshots for the cubic spline in t; the evaluation times are on it
LENGTH = 2.0  # the period, x ∈ [−1, 1)


def kdv_modes(initial: Callable[[np.ndarray], np.ndarray], dispersion: float, t_end: float,
              *, modes: int, dt: float, snapshot_dt: float = SNAPSHOT_DT) -> dict[str, np.ndarray]:
    """Snapshots of the real-FFT modes of u from ``initial(x)`` on the grid of ``modes``
    points of [−1, 1), every ``snapshot_dt`` up to ``t_end``: ``{"times", "modes"}``."""
    save_every = snapshot_stride(snapshot_dt, dt)
    x = -1.0 + LENGTH * np.arange(modes) / modes
    k = wavenumbers(modes, LENGTH)
    keep = np.arange(k.size) < modes // 3  # the 2/3 rule: |k| below 2/3 of the Nyquist
    linear = 1j * dispersion * k ** 3

    def advection(v: np.ndarray) -> np.ndarray:
        u = np.fft.irfft(v * keep, n=modes)
        return -0.5j * k * np.fft.rfft(u * u) * keep

    snapshots = round(t_end / snapshot_dt)
    states = etdrk4(np.fft.rfft(initial(x)), linear, advection, dt=dt,
                    steps=snapshots * save_every, save_every=save_every)
    return {"times": snapshot_dt * np.arange(snapshots + 1), "modes": states}


def kdv_solution(dispersion: float = 0.0025, t_end: float = 1.0, *, modes: int = 256,
                 dt: float = 1e-4, cache: bool = True) -> SpectralSolution:
    """u(x, t) of the KdV benchmark (u₀ = cos πx) as a callable ``u(x, t)``.

    Args:
        dispersion: δ² > 0; t_end: final time.
        modes: grid points n of the Fourier discretisation (even, ≥ 8).
        dt: ETDRK4 step; must divide the snapshot spacing.
        cache: read and write the on-disk cache (:mod:`pinnsketch.references.cache`).

    Raises:
        ValueError: for a non-positive parameter, an odd ``modes`` or a ``dt`` that does not
            divide the snapshot spacing.
    """
    for name, value in (("dispersion", dispersion), ("t_end", t_end), ("dt", dt)):
        check_positive(name, value)
    check_modes(modes)

    def compute() -> dict[str, np.ndarray]:
        return kdv_modes(lambda x: np.cos(np.pi * x), dispersion, t_end, modes=modes, dt=dt)

    key = {"dispersion": dispersion, "t_end": t_end, "modes": modes, "dt": dt,
           "snapshot_dt": SNAPSHOT_DT, "version": 1}
    arrays = cached_arrays("kdv", key, compute) if cache else compute()
    return SpectralSolution(arrays["times"], arrays["modes"], modes, -1.0, LENGTH)
