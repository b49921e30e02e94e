"""The reaction–diffusion reference: u_t = ν u_xx + ρ u (1 − u) on x ∈ [0, 2π), periodic,
u(x, 0) = u₀(x), t ∈ [0, T] (the set-up of Krishnapriyan et al. 2021), by Strang operator
splitting of the two exact flows, cached:

    reaction over h/2:  u ← u e^{ρh/2} / (1 − u + u e^{ρh/2})   (the logistic solution),
    diffusion over h:   û_k ← e^{−ν k² h} û_k                   (exact on Fourier modes),
    reaction over h/2.

Second order in h; the spatial discretisation is Fourier collocation on ``modes`` points.
Checks (``tests/test_zoo_second_slice.py``): the splitting error falls 4× when h halves, an
ETDRK4 integration of the same semi-discretisation agrees, and with ν → the reaction alone
it is the exact logistic solution.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from pinnsketch.references.arguments import check_modes, check_positive, snapshot_stride
from pinnsketch.references.cache import cached_arrays
from pinnsketch.references.etdrk4 import SpectralSolution, wavenumbers

__all__ = ["reaction_diffusion_modes", "reaction_diffusion_solution"]

SNAPSHOT_DT = 5e-3
LENGTH = 2 * np.pi


def _logistic(u: np.ndarray, growth: float) -> np.ndarray:
    """The logistic flow of u' = ρ u (1 − u) over a time with e^{ρ·time} = ``growth``."""
    return u * growth / (1 - u + u * growth)


def reaction_diffusion_modes(initial: Callable[[np.ndarray], np.ndarray], nu: float,
                             rho: float, t_end: float, *, modes: int, dt: float,
                             snapshot_dt: float = SNAPSHOT_DT) -> dict[str, np.ndarray]:
    """Snapshots ``{"times", "modes"}`` (real-FFT modes on ``modes`` points of [0, 2π))
    every ``snapshot_dt`` up to ``t_end``, from ``initial(x)``, by Strang splitting."""
    save_every = snapshot_stride(snapshot_dt, dt)
    x = LENGTH * np.arange(modes) / modes
    decay = np.exp(-nu * wavenumbers(modes, LENGTH) ** 2 * dt)
    half = np.exp(rho * dt / 2)
    u = initial(x).astype(float)
    out = [np.fft.rfft(u)]
    for step in range(1, round(t_end / snapshot_dt) * save_every + 1):
        u = _logistic(u, half)
        u = np.fft.irfft(decay * np.fft.rfft(u), n=modes)
        u = _logistic(u, half)
        if step % save_every == 0:
            out.append(np.fft.rfft(u))
    return {"times": snapshot_dt * np.arange(len(out)), "modes": np.stack(out)}


def reaction_diffusion_solution(initial: Callable[[np.ndarray], np.ndarray], name: str,
                                nu: float = 5.0, rho: float = 5.0, t_end: float = 1.0, *,
                                modes: int = 256, dt: float = 1e-4,
                                cache: bool = True) -> SpectralSolution:
    """u(x, t) as a callable ``u(x, t)``.

    Args:
        initial: u₀ on [0, 2π); name: its name in the cache key (one name per u₀).
        nu: diffusion ν > 0; rho: reaction rate ρ > 0; t_end: final time.
        modes: grid points (even, ≥ 8); dt: splitting step, dividing the snapshot spacing.
        cache: read and write the on-disk cache.
    """
    for key, value in (("nu", nu), ("rho", rho), ("t_end", t_end), ("dt", dt)):
        check_positive(key, value)
    check_modes(modes)

    def compute() -> dict[str, np.ndarray]:
        return reaction_diffusion_modes(initial, nu, rho, t_end, modes=modes, dt=dt)

    key = {"initial": name, "nu": nu, "rho": rho, "t_end": t_end, "modes": modes, "dt": dt,
           "snapshot_dt": SNAPSHOT_DT, "version": 1}
    arrays = cached_arrays("reaction_diffusion", key, compute) if cache else compute()
    return SpectralSolution(arrays["times"], arrays["modes"], modes, 0.0, LENGTH)
