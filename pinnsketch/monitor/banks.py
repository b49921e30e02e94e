"""Sketch banks: the sketches of all (layer, term) pairs of one weight shape, batched.

A bank keeps its streams' state and reads their spectra; the monitor owns one bank per weight
shape. ``BACKENDS`` maps the ``monitor.backend`` names to the bank classes.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from pinnsketch.sketch.frequent_directions import FrequentDirections
from pinnsketch.sketch.three_sketch import sketch_sizes

__all__ = ["BACKENDS"]


class ThreeSketchBank:
    """EMA three-sketches of ``count`` streams of m×n matrices, batched.

    X = ΥḠ (B×k×n), Y = ḠΩᵀ (B×m×k), Z = ΦḠΨᵀ (B×s×s) with Υ, Ω, Φ, Ψ views of the monitor's
    shared Gaussian draws ``left`` ((k_max + s_max) × max m) and ``right`` (× max n).
    """

    uses_mean = True  # the sketched matrix is the EMA Ḡ itself

    def __init__(self, count: int, m: int, n: int, rank: int, beta: float,
                 tests: tuple[torch.Tensor, ...], k_max: int, dtype: torch.dtype,
                 device: torch.device):
        self.k, self.s = sketch_sizes(rank, "rol", (m, n))
        self.beta = beta
        left, right = tests
        k, s = self.k, self.s
        self.upsilon, self.phi = left[:k, :m], left[k_max:k_max + s, :m]
        self.omega_t, self.psi_t = right[:k, :n].mT, right[k_max:k_max + s, :n].mT
        options = dict(dtype=dtype, device=device)
        self.x = torch.zeros(count, k, n, **options)
        self.y = torch.zeros(count, m, k, **options)
        self.z = torch.zeros(count, s, s, **options)
        self.mass = 0.0  # weight the EMA holds, 1 − β^t: the bias correction divides by it

    def update(self, g: torch.Tensor) -> None:
        """Ḡ ← βḠ + (1−β)G for all B streams at once; ``g`` is (B, m, n). Hot path."""
        eta = 1.0 - self.beta
        self.x.lerp_(self.upsilon @ g, eta)
        self.y.lerp_(g @ self.omega_t, eta)
        self.z.lerp_(self.phi @ g @ self.psi_t, eta)
        self.mass = self.beta * self.mass + eta

    def spectrum(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Singular values (B, k) and left (B, m, k) / right (B, n, k) singular vectors of the
        bias-corrected estimate Â = Q C Pᵀ.

        Steps (ThreeSketch.reconstruct, batched):
          1. Q = orth(Y), P = orth(Xᵀ).
          2. C = (ΦQ)⁺ Z ((ΨP)⁺)ᵀ through the QR factors of ΦQ and ΨP (triangular solves).
          3. C = U_c Σ V_cᵀ; U = Q U_c, V = P V_c.
        """
        q = torch.linalg.qr(self.y).Q
        p = torch.linalg.qr(self.x.mT).Q
        u1, t1 = torch.linalg.qr(self.phi @ q)
        u2, t2 = torch.linalg.qr(self.psi_t.mT @ p)
        left = torch.linalg.solve_triangular(t1, u1.mT @ self.z, upper=True)
        core = torch.linalg.solve_triangular(t2.mT, left @ u2, upper=False, left=False)
        u_c, sigma, v_ct = torch.linalg.svd(core / max(self.mass, 1e-300))
        return sigma, q @ u_c, p @ v_ct.mT

    def tensors(self) -> list[torch.Tensor]:
        return [self.x, self.y, self.z]

    def state_dict(self) -> dict[str, Any]:
        return {"x": self.x.clone(), "y": self.y.clone(), "z": self.z.clone(), "mass": self.mass}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name in ("x", "y", "z"):
            getattr(self, name).copy_(state[name])
        self.mass = float(state["mass"])


class FrequentDirectionsBank:
    """Frequent Directions sketches B (ℓ × n) of EMA(GᵀG), one per stream: rows √(1−β)·G
    enter a sketch decayed by β per check (Sketchy's EMA variant). Their spectrum is that of
    the gradient's second moment — the spread of directions over time — and they give right
    subspaces only."""

    uses_mean = False

    def __init__(self, count: int, m: int, n: int, rank: int, beta: float,
                 tests: tuple[torch.Tensor, ...], k_max: int, dtype: torch.dtype,
                 device: torch.device):
        del tests, k_max  # deterministic: no test matrices
        self.scale, self.beta = math.sqrt(1.0 - beta), beta
        self.sketches = [FrequentDirections(n, min(2 * rank + 1, n), beta=beta, dtype=dtype,
                                            device=device) for _ in range(count)]
        self.mass = 0.0

    def update(self, g: torch.Tensor) -> None:
        for sketch, rows in zip(self.sketches, g):
            sketch.update(self.scale * rows)
        self.mass = self.beta * self.mass + 1.0 - self.beta

    def spectrum(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        covariance = torch.stack([s.covariance() for s in self.sketches]) / max(self.mass, 1e-300)
        energy, vectors = torch.linalg.eigh(covariance)
        return energy.flip(-1).clamp_min(0).sqrt(), None, vectors.flip(-1)

    def tensors(self) -> list[torch.Tensor]:
        return []

    def nbytes(self) -> int:
        return sum(s.nbytes() for s in self.sketches)

    def state_dict(self) -> dict[str, Any]:
        return {"sketches": [s.state_dict() for s in self.sketches], "mass": self.mass}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for sketch, saved in zip(self.sketches, state["sketches"]):
            sketch.load_state_dict(saved)
        self.mass = float(state["mass"])


BACKENDS = {"three_sketch": ThreeSketchBank, "fd": FrequentDirectionsBank}
