"""Frequent Directions sketch of a stream of rows (Liberty 2013; Ghashami et al. 2016), with the
β-decayed variant used by Sketchy (Feinberg et al. 2023). METHOD.md §6.

The stream is rows a_i ∈ ℝ^d arriving in batches; A stacks them (each batch scaled by
β^{(T−t)/2} in the decayed variant, so AᵀA = Σ_t β^{T−t} A_tᵀA_t). The sketch B (ℓ×d) keeps

    0 ⪯ AᵀA − BᵀB ⪯ Δ·I,   Δ ≤ ‖A − A_k‖²_F / (ℓ + 1 − k) ≤ ‖A − A_k‖²_F / (ℓ − k)

for every k < ℓ (A_k the best rank-k approximation), where Δ is the tracked dropped mass
(:attr:`FrequentDirections.dropped_mass`, Sketchy's escaped mass).

Update of one batch R (b×d) — steps:
  1. Decay: B ← √β B, Δ ← βΔ (β = 1: plain FD).
  2. If the free rows of B hold R, copy it in (no SVD: BᵀB gains exactly RᵀR).
  3. Otherwise take the spectrum of the stack M = [B_used; R] = UΣVᵀ (eigendecomposition of
     its smaller Gram matrix), δ = σ²_{ℓ+1} (0 if M has ≤ ℓ singular values), keep
     B = diag(√(σ_j² − δ))_{j≤ℓ} V_ℓᵀ, Δ ← Δ + δ.
Why the bound holds for a batch: each shrink changes the covariance by a PSD matrix of norm δ
and removes Σ_j min(σ_j², δ) ≥ (ℓ+1)δ of squared Frobenius mass; the decay multiplies both
ledgers by β. The argument of Ghashami et al. (2016, Thm 1.1) then gives the bound above,
one better in the denominator than shrinking by σ²_ℓ.

Memory: ℓ·d + 1 numbers (B and Δ), constant in the stream length; an update holds a transient
(ℓ + b)×d stack and a min(ℓ + b, d)² Gram matrix.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["FrequentDirections"]

STATE_VERSION = 1
_DTYPES = (torch.float32, torch.float64)


def _check_int(name: str, value: Any, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}: got {value!r}, must be an integer >= {low}")
    return value


def _spectrum(stack: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """σ_j² (descending, min(n, d) of them) and the rows σ_j v_jᵀ of an n×d ``stack``.

    Through the eigendecomposition of the smaller Gram matrix (n×n or d×d): about twice as
    fast as an SVD of the stack on CPU. Squaring costs absolute accuracy ~ε‖M‖² in σ_j²,
    which loosens the FD guarantee only by O(ε‖A‖²_F).
    """
    n, d = stack.shape
    if n <= d:
        energy, u = torch.linalg.eigh(stack @ stack.mT)         # ascending
        energy, u = energy.flip(0), u.flip(1)
        return energy, u.mT @ stack                              # u_jᵀM = σ_j v_jᵀ
    energy, v = torch.linalg.eigh(stack.mT @ stack)
    energy, v = energy.flip(0), v.flip(1)
    return energy, energy.clamp_min(0).sqrt().unsqueeze(1) * v.mT


class FrequentDirections:
    """Frequent Directions sketch B (ℓ×d) of a (decayed) row stream; module docstring.

    Args:
        d: row length.
        ell: sketch rows ℓ ≥ 1 (the guarantee is for ranks k < ℓ; ℓ ≥ d is exact).
        beta: decay per :meth:`update` call in [0, 1]; 1 is plain FD, β < 1 Sketchy's EMA
            variant (the sketch then tracks Σ_t β^{T−t} A_tᵀA_t; feed √(1−β)·A_t for an EMA).
        dtype: torch.float32 or torch.float64.
        device: where B lives (default CPU).

    Memory: ℓ·d + 1 numbers (:meth:`nbytes`), whatever the stream length.

    Raises:
        ValueError: d, ell, beta or dtype out of range.
    """

    def __init__(self, d: int, ell: int, *, beta: float = 1.0, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None):
        self.d, self.ell = _check_int("d", d, 1), _check_int("ell", ell, 1)
        if not (isinstance(beta, (int, float)) and not isinstance(beta, bool)
                and 0.0 <= beta <= 1.0):
            raise ValueError(f"beta: got {beta!r}, must be a float in [0, 1] (1 = plain FD)")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype: got {dtype}, allowed: torch.float32, torch.float64")
        self.beta, self.dtype = float(beta), dtype
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self._b = torch.zeros(ell, d, dtype=dtype, device=self.device)
        self._dropped = torch.zeros((), dtype=dtype, device=self.device)
        # Rows of B in use; it follows from shapes only, so reading it never syncs.
        self._filled = 0
        self.steps = 0

    @property
    def sketch(self) -> torch.Tensor:
        """B (ℓ×d); rows past the used ones are zero. Treat as read-only."""
        return self._b

    @property
    def dropped_mass(self) -> torch.Tensor:
        """Δ = Σ_t β^{T−t} δ_t (0-dim): a certified bound, 0 ⪯ AᵀA − BᵀB ⪯ Δ·I."""
        return self._dropped

    def update(self, rows: torch.Tensor) -> None:
        """Insert a batch of rows (b×d, or one row of length d). Hot path: no host sync of its
        own (``eigh`` may synchronise on CUDA); one symmetric eigendecomposition of size
        min(ℓ + b, d) unless the batch fits in B's free rows."""
        if rows.dim() == 1:
            rows = rows.unsqueeze(0)
        if rows.dim() != 2 or rows.shape[1] != self.d:
            raise ValueError(f"rows: got shape {tuple(rows.shape)}, expected (b, {self.d})")
        rows = rows.to(self._b)
        if self.beta != 1.0:                                    # 1. decay (Sketchy)
            self._b.mul_(math.sqrt(self.beta))
            self._dropped.mul_(self.beta)
        b, used = rows.shape[0], self._filled
        self.steps += 1
        if used + b <= self.ell:                                # 2. room left: copy in
            self._b[used:used + b].copy_(rows)
            self._filled = used + b
            return
        stack = torch.cat([self._b[:used], rows])               # 3. shrink
        energy, directions = _spectrum(stack)
        keep = min(self.ell, energy.shape[0])
        delta = energy[self.ell].clamp_min(0) if energy.shape[0] > self.ell else None
        if delta is not None:
            self._dropped.add_(delta)
        energy = energy[:keep]
        shrunk = energy if delta is None else (energy - delta).clamp_min(0)
        # Row j of the new B is √(σ_j² − δ) v_jᵀ = √((σ_j² − δ)/σ_j²) · σ_j v_jᵀ.
        scale = torch.where(energy > 0, shrunk / energy, torch.zeros_like(energy)).sqrt()
        self._b[:keep] = scale.unsqueeze(1) * directions[:keep]
        self._b[keep:] = 0
        self._filled = keep

    def covariance(self) -> torch.Tensor:
        """BᵀB (d×d), the sketch's estimate of AᵀA (from below, within Δ)."""
        return self._b.mT @ self._b

    def nbytes(self) -> int:
        """Bytes of B and Δ: (ℓ·d + 1) × element size; constant in the stream length."""
        return (self._b.numel() + 1) * self._b.element_size()

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs (tensors cloned)."""
        return {"version": STATE_VERSION, "d": self.d, "ell": self.ell, "beta": self.beta,
                "steps": self.steps, "filled": self._filled, "sketch": self._b.clone(),
                "dropped": self._dropped.clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output.

        Raises:
            ValueError: on a version, d or ell mismatch.
        """
        for key, mine in (("version", STATE_VERSION), ("d", self.d), ("ell", self.ell)):
            if state[key] != mine:
                raise ValueError(f"state['{key}']: got {state[key]!r}, this sketch has {mine!r}")
        self.beta, self.steps, self._filled = float(state["beta"]), int(state["steps"]), \
            int(state["filled"])
        self._b.copy_(state["sketch"])
        self._dropped.copy_(state["dropped"])

    def __repr__(self) -> str:
        return (f"FrequentDirections(d={self.d}, ell={self.ell}, beta={self.beta}, "
                f"steps={self.steps})")
