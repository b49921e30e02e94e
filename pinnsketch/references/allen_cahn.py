"""The Allen–Cahn reference: u_t = ε u_xx + γ (u − u³) on x ∈ [−1, 1), periodic,
u(x, 0) = x² cos πx, t ∈ [0, T] (ε = 1e-4, γ = 5, T = 1: the benchmark of Raissi et al. 2019,
PirateNets and jaxpi), by Fourier ETDRK4 (:mod:`pinnsketch.references.etdrk4`), cached.

Resolution (``python benchmarks/references.py``): with the defaults, 2048 modes and
dt = 1e-4, doubling the modes changes u on the 512 × 201 evaluation grid by 7.0e-7 relative
(L2), and a 4× smaller dt by 3e-12; 512 → 1024 modes still changes it by 8e-6. Convergence
in the modes is algebraic, not spectral: u₀ = x² cos πx has a kink at the periodic ends
(its slope is −2 at x = 1 and +2 at x = −1), and the interfaces are sqrt(ε/γ) ≈ 0.0045 wide.
"""
from __future__ import annotations

import numpy as np

from pinnsketch.references.arguments import check_modes, check_positive, snapshot_stride
from pinnsketch.references.cache import cached_arrays
from pinnsketch.references.etdrk4 import SpectralSolution, etdrk4, wavenumbers

__all__ = ["allen_cahn_solution"]

SNAPSHOT_DT = 1e-3  # snapshots for the cubic spline in t; the evaluation times are on it


def allen_cahn_solution(epsilon: float = 1e-4, gamma: float = 5.0, t_end: float = 1.0, *,
                        modes: int = 2048, dt: float = 1e-4,
                        cache: bool = True) -> SpectralSolution:
    """u(x, t) of the Allen–Cahn benchmark as a callable ``u(x, t)``.

    Args:
        epsilon: diffusion ε > 0; gamma: reaction rate γ > 0; t_end: final time.
        modes: grid points n of the Fourier discretisation (even).
        dt: ETDRK4 step; must divide ``SNAPSHOT_DT``.
        cache: read and write the on-disk cache (:mod:`pinnsketch.references.cache`).

    Raises:
        ValueError: for a non-positive parameter, an odd ``modes`` or a ``dt`` that does not
            divide the snapshot spacing.
    """
    for name, value in (("epsilon", epsilon), ("gamma", gamma), ("t_end", t_end), ("dt", dt)):
        check_positive(name, value)
    check_modes(modes)
    save_every = snapshot_stride(SNAPSHOT_DT, dt)
    snapshots = round(t_end / SNAPSHOT_DT)
    length = 2.0

    def compute() -> dict[str, np.ndarray]:
        x = -1.0 + length * np.arange(modes) / modes
        k = wavenumbers(modes, length)
        linear = -epsilon * k ** 2 + gamma
        cubic = lambda v: -gamma * np.fft.rfft(np.fft.irfft(v, n=modes) ** 3)
        states = etdrk4(np.fft.rfft(x ** 2 * np.cos(np.pi * x)), linear, cubic, dt=dt,
                        steps=snapshots * save_every, save_every=save_every)
        return {"times": SNAPSHOT_DT * np.arange(snapshots + 1), "modes": states}

    key = {"epsilon": epsilon, "gamma": gamma, "t_end": t_end, "modes": modes, "dt": dt,
           "snapshot_dt": SNAPSHOT_DT, "version": 1}
    arrays = cached_arrays("allen_cahn", key, compute) if cache else compute()
    return SpectralSolution(arrays["times"], arrays["modes"], modes, -1.0, length)
