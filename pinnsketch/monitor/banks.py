"""Banks: the EMA gradient state of all (layer, term) pairs of one weight shape, batched.

A bank keeps its streams' state and reads their spectra; the monitor owns one bank per weight
shape. Two kinds keep the same quantity, the bias-corrected EMA gradient Ḡ, and answer the
same questions (singular values, leading subspaces):

- :class:`ExactBank` keeps Ḡ itself, m·n numbers per stream;
- :class:`ThreeSketchBank` keeps its EMA three-sketch (Tropp et al. 2019), k(m+n) + s²
  numbers per stream plus views of test matrices shared by every bank.

:func:`choose_bank` picks, per shape, the one that holds fewer numbers (``backend="auto"``):
below about width 40 at rank 4 the exact state is the smaller one, and the sketch pays only
above it. ``BACKENDS`` are the ``monitor.backend`` names.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from pinnsketch.sketch.three_sketch import sketch_sizes

__all__ = ["BACKENDS", "BankGroup", "ExactBank", "ThreeSketchBank", "choose_bank"]

BACKENDS = ("auto", "exact", "three_sketch")


class ExactBank:
    """The exact EMA gradients Ḡ of ``count`` streams of m×n matrices, ``(count, m, n)``."""

    kind = "exact"

    def __init__(self, count: int, m: int, n: int, rank: int, beta: float,
                 tests: tuple[torch.Tensor, ...], k_max: int, dtype: torch.dtype,
                 device: torch.device):
        del rank, tests, k_max  # the exact state needs neither sizes nor test matrices
        self.beta = beta
        self.ema = torch.zeros(count, m, n, dtype=dtype, device=device)
        self.mass = 0.0  # weight the EMA holds, 1 − β^t: the bias correction divides by it

    @staticmethod
    def numbers(m: int, n: int, rank: int) -> int:
        """Numbers held per stream."""
        return m * n

    def update(self, g: torch.Tensor) -> None:
        """Ḡ ← βḠ + (1−β)G for all streams; ``g`` is (count, m, n)."""
        self.ema.lerp_(g, 1.0 - self.beta)
        self.mass = self.beta * self.mass + 1.0 - self.beta

    def spectrum(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Singular values (count, min(m, n)), left (count, m, ·) and right (count, n, ·)
        singular vectors of the bias-corrected Ḡ: an exact SVD."""
        u, sigma, vh = torch.linalg.svd(self.ema / max(self.mass, 1e-300), full_matrices=False)
        return sigma, u, vh.mT

    def tensors(self) -> list[torch.Tensor]:
        return [self.ema]

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema.clone(), "mass": self.mass}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.ema.copy_(state["ema"])
        self.mass = float(state["mass"])


class ThreeSketchBank:
    """EMA three-sketches of ``count`` streams of m×n matrices, batched.

    X = ΥḠ (B×k×n), Y = ḠΩᵀ (B×m×k), Z = ΦḠΨᵀ (B×s×s) with Υ, Ω, Φ, Ψ views of the monitor's
    shared Gaussian draws ``left`` ((k_max + s_max) × max m) and ``right`` (× max n).
    """

    kind = "three_sketch"

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
        self.mass = 0.0

    @staticmethod
    def numbers(m: int, n: int, rank: int) -> int:
        """Numbers held per stream (the shared test matrices not included)."""
        k, s = sketch_sizes(rank, "rol", (m, n))
        return k * (m + n) + s * s

    def update(self, g: torch.Tensor) -> None:
        """Ḡ ← βḠ + (1−β)G for all B streams at once; ``g`` is (B, m, n). Hot path."""
        eta = 1.0 - self.beta
        self.x.lerp_(self.upsilon @ g, eta)
        self.y.lerp_(g @ self.omega_t, eta)
        self.z.lerp_(self.phi @ g @ self.psi_t, eta)
        self.mass = self.beta * self.mass + eta

    def spectrum(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Singular values (B, k) and left (B, m, k) / right (B, n, k) singular vectors of the
        bias-corrected estimate Â = Q C Pᵀ of Ḡ.

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


def choose_bank(backend: str, m: int, n: int, rank: int) -> type:
    """The bank class for an m×n weight under ``backend`` (one of :data:`BACKENDS`):
    ``auto`` takes the exact state when it holds no more numbers than the sketch."""
    if backend == "exact":
        return ExactBank
    if backend == "three_sketch":
        return ThreeSketchBank
    if backend == "auto":
        cheaper = ExactBank.numbers(m, n, rank) <= ThreeSketchBank.numbers(m, n, rank)
        return ExactBank if cheaper else ThreeSketchBank
    raise ValueError(f"monitor backend: got {backend!r} (allowed: {', '.join(BACKENDS)})")


class BankGroup:
    """The layers of one weight shape: their indices, their bank and the leading subspaces
    of its streams at the last spectral evaluation (for the drift)."""

    def __init__(self, shape: tuple[int, int], layers: list[int], bank, rank: int,
                 n_terms: int, dtype: torch.dtype, device: torch.device):
        self.shape, self.layers, self.bank, self.rank = shape, layers, bank, rank
        m, n = shape
        count = len(layers) * n_terms
        # Leading subspaces at the last spectral evaluation (allocated once: constant memory).
        self.left = torch.zeros(count, m, rank, dtype=dtype, device=device)
        self.right = torch.zeros(count, n, rank, dtype=dtype, device=device)
        self.has_previous = False
        # Rows (layer, a) and (layer, b) of every pair a < b of terms, layer by layer.
        pairs = [(i * n_terms + a, i * n_terms + b) for i in range(len(layers))
                 for a in range(n_terms) for b in range(a + 1, n_terms)]
        self.pair_a = torch.tensor([a for a, _ in pairs], dtype=torch.long, device=device)
        self.pair_b = torch.tensor([b for _, b in pairs], dtype=torch.long, device=device)

    def tensors(self) -> list[torch.Tensor]:
        return self.bank.tensors() + [self.left, self.right, self.pair_a, self.pair_b]
