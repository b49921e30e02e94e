"""Where in frequency a field's energy lies: the share of Σ v² in octave bands of normalised
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


def band_energies(values: np.ndarray, bands: int = 5) -> np.ndarray:
    """Energy Σ c_k² of ``values`` (a grid, one axis per input) in octave bands of the
    normalised radial wavenumber ρ = ‖(k₁/n₁, k₂/n₂, …)‖: [0, 2^{1−B}), [2^{1−B}, 2^{2−B}),
    …, [1/2, ∞) for B = ``bands`` (for 5: edges 1/16, 1/8, 1/4, 1/2), lowest first; c the
    orthonormal DCT-II coefficients, so the bands sum to Σ v² (Parseval). Octaves, because
    the scales of a multi-scale solution are ratios (sin πx and sin 8πx are three apart).

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
    edges = 2.0 ** np.arange(1 - bands, 0)  # bands − 1 inner edges
    band = np.searchsorted(edges, radius, side="right")
    return np.bincount(band.ravel(), weights=energy.ravel(), minlength=bands)


def band_shares(energies: np.ndarray) -> list[float]:
    """``energies`` (from :func:`band_energies`, possibly summed over fields) as shares
    summing to 1 (all 0 for a zero field)."""
    total = float(np.sum(energies))
    return (np.asarray(energies) / total).tolist() if total > 0 else [0.0] * len(energies)
