"""Where in frequency a field's energy lies: the share of Σ v² in equal bands of normalised
wavenumber, from an orthonormal DCT-II on a regular grid (Parseval: the shares sum to 1).

The spectral-bias evidence (Rahaman et al. 2019; Wang, Wang & Perdikaris 2021, "On the
eigenvector bias of Fourier feature networks"): a network fits low frequencies first, so a
PINN stalled by spectral bias leaves a residual whose energy sits in the high bands. The
DCT, not the FFT, because the grids are not periodic: a DCT-II is the Fourier transform of
the even extension, which has no jump at the ends to leak energy into high frequencies.
"""
from __future__ import annotations

import numpy as np
from scipy.fft import dctn

__all__ = ["band_energies", "band_shares"]


def band_energies(values: np.ndarray, bands: int = 3) -> np.ndarray:
    """Energy Σ c_k² of ``values`` (a grid, one axis per input) in ``bands`` equal bands of
    the normalised radial wavenumber ρ = ‖(k₁/n₁, k₂/n₂, …)‖ ∈ [0, 1), lowest band first
    (ρ ≥ 1, the corners of a grid of two or more axes, counts in the last band); c the
    orthonormal DCT-II coefficients, so the bands sum to Σ v² (Parseval).

    Returns:
        ``(bands,)`` energies.
    """
    if bands < 1 or values.ndim < 1:
        raise ValueError(f"band_energies: bands {bands!r} must be >= 1 and values a grid, "
                         f"got shape {values.shape}")
    energy = dctn(np.asarray(values, dtype=np.float64), type=2, norm="ortho") ** 2
    radius = np.sqrt(sum(np.square(np.arange(n) / n).reshape([-1 if a == i else 1
                                                              for a in range(values.ndim)])
                         for i, n in enumerate(values.shape)))
    band = np.minimum((radius * bands).astype(int), bands - 1)
    return np.bincount(band.ravel(), weights=energy.ravel(), minlength=bands)


def band_shares(energies: np.ndarray) -> list[float]:
    """``energies`` (from :func:`band_energies`, possibly summed over fields) as shares
    summing to 1 (all 0 for a zero field)."""
    total = float(np.sum(energies))
    return (np.asarray(energies) / total).tolist() if total > 0 else [0.0] * len(energies)
