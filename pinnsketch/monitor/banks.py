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

import math
from typing import Any, Mapping

import torch

from pinnsketch.monitor.statistics import largest_angle
from pinnsketch.sketch.three_sketch import sketch_sizes

__all__ = ["BACKENDS", "BankGroup", "ExactBank", "ThreeSketchBank", "choose_bank"]

BACKENDS = ("auto", "exact", "three_sketch")


class ExactBank:
    """The exact EMA gradients Ḡ of ``count`` streams of m×n matrices, ``(count, m, n)``."""

    kind = "exact"

    def __init__(self, count: int, m: int, n: int, rank: int, beta: float,
                 tests: tuple[torch.Tensor, ...], k_max: int, dtype: torch.dtype,
                 device: torch.device, probes: int = 0):
        del rank, tests, k_max, probes  # the exact state needs no sizes, tests or probes
        self.beta = beta
        self.ema = torch.zeros(count, m, n, dtype=dtype, device=device)
        self.mass = 0.0  # weight the EMA holds, 1 − β^t: the bias correction divides by it

    @staticmethod
    def numbers(m: int, n: int, rank: int) -> int:
        """Numbers held per stream."""
        return m * n

    def held(self) -> int:
        """Numbers held per stream now."""
        return self.ema[0].numel()

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
    shared Gaussian draws ``left`` ((k_max + s_max [+ q]) × max m) and ``right`` (× max n);
    with ``probes`` q > 0 also W = ΘḠ (B×q×n), Θ the last q rows of ``left``, for the
    a-posteriori error estimate that steers an adaptive rank (Tropp et al. 2019, §6).
    """

    kind = "three_sketch"

    def __init__(self, count: int, m: int, n: int, rank: int, beta: float,
                 tests: tuple[torch.Tensor, ...], k_max: int, dtype: torch.dtype,
                 device: torch.device, probes: int = 0):
        self.count, self.m, self.n, self.beta, self.q = count, m, n, beta, probes
        self.tests, self.k_max = tests, k_max
        self.options = dict(dtype=dtype, device=device)
        if probes:
            self.theta = tests[0][-probes:, :m]
            self.w = torch.zeros(count, probes, n, **self.options)
        self._allocate(rank)

    def _allocate(self, rank: int) -> None:
        """Sketches of a rank-``rank`` target, empty, and the views of the test matrices."""
        self.rank = rank
        self.k, self.s = sketch_sizes(rank, "rol", (self.m, self.n))
        self.x = torch.zeros(self.count, self.k, self.n, **self.options)
        self.y = torch.zeros(self.count, self.m, self.k, **self.options)
        self.z = torch.zeros(self.count, self.s, self.s, **self.options)
        self._views()
        self.mass = 0.0
        if self.q:
            self.w.zero_()

    def _views(self) -> None:
        left, right = self.tests
        k, s, m, n, k_max = self.k, self.s, self.m, self.n, self.k_max
        self.upsilon, self.phi = left[:k, :m], left[k_max:k_max + s, :m]
        self.omega_t, self.psi_t = right[:k, :n].mT, right[k_max:k_max + s, :n].mT

    @staticmethod
    def numbers(m: int, n: int, rank: int, probes: int = 0) -> int:
        """Numbers held per stream at ``rank`` (the shared test matrices not included)."""
        k, s = sketch_sizes(rank, "rol", (m, n))
        return k * (m + n) + s * s + probes * n

    def held(self) -> int:
        """Numbers held per stream now (at the current rank, probes included)."""
        return self.numbers(self.m, self.n, self.rank, self.q)

    def update(self, g: torch.Tensor) -> None:
        """Ḡ ← βḠ + (1−β)G for all B streams at once; ``g`` is (B, m, n). Hot path."""
        eta = 1.0 - self.beta
        self.x.lerp_(self.upsilon @ g, eta)
        self.y.lerp_(g @ self.omega_t, eta)
        self.z.lerp_(self.phi @ g @ self.psi_t, eta)
        if self.q:
            self.w.lerp_(self.theta @ g, eta)
        self.mass = self.beta * self.mass + eta

    def resize(self, rank: int) -> None:
        """Sketch a rank-``rank`` target from now on (an adaptive rank's decision).

        Smaller sizes truncate in place: the leading rows of the test matrices are Gaussian
        test matrices themselves and the leading blocks of X, Y, Z exactly their sketches,
        so nothing is lost. Larger sizes cannot be rebuilt from the past stream: the
        sketches (and W, so the estimate compares like with like) restart from zero, and
        bias correction makes the first estimate after the next update that update's matrix.
        """
        k, s = sketch_sizes(rank, "rol", (self.m, self.n))
        if k > self.k_max:
            raise ValueError(f"rank {rank}: its range size {k} exceeds the test matrices' "
                             f"{self.k_max}")
        if k <= self.k and s <= self.s:
            self.rank, self.k, self.s = rank, k, s
            self.x = self.x[:, :k].clone()
            self.y = self.y[..., :k].clone()
            self.z = self.z[:, :s, :s].clone()
            self._views()
        else:
            self._allocate(rank)

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

    def scree(self, sigma: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Estimated relative errors ‖Ḡ − Â_r‖_F/‖Ḡ‖_F of every truncation rank r = 1..k of
        the estimate ``(sigma, u, v)`` (from :meth:`spectrum`), ``(B, k)``; NaN where W = 0.

        Entry r−1 is (τ_{r+1}(Â) + e)/‖Ḡ‖ with e = ‖W − ΘÂ‖_F/√q (unbiased in square, since Θ
        is independent of Â) and ‖Ḡ‖ ≈ ‖W‖_F/√q: the triangle inequality
        ‖Ḡ − Â_r‖ ≤ ‖Â − Â_r‖ + ‖Ḡ − Â‖ with estimated terms (Tropp et al. 2019, §6.5), as
        :meth:`pinnsketch.sketch.three_sketch.ThreeSketch.scree` for one stream.
        """
        if not self.q:
            raise RuntimeError("scree: this bank keeps no error probes")
        w = self.w / max(self.mass, 1e-300)
        theta_a = (self.theta @ u) * sigma[:, None, :] @ v.mT             # ΘÂ (B, q, n)
        error = torch.linalg.matrix_norm(w - theta_a) / self.q ** 0.5
        norm = torch.linalg.matrix_norm(w) / self.q ** 0.5
        energy = sigma.square()
        tail = (energy.flip(-1).cumsum(-1).flip(-1) - energy).clamp_min(0).sqrt()  # τ_{r+1}
        return (tail + error[:, None]) / norm[:, None]

    def tensors(self) -> list[torch.Tensor]:
        return [self.x, self.y, self.z] + ([self.w] if self.q else [])

    def state_dict(self) -> dict[str, Any]:
        state = {"rank": self.rank, "x": self.x.clone(), "y": self.y.clone(),
                 "z": self.z.clone(), "mass": self.mass}
        return state | ({"w": self.w.clone()} if self.q else {})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("rank", self.rank) != self.rank:
            self._allocate(state["rank"])
        for name in ("x", "y", "z") + (("w",) if self.q else ()):
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

    def move_to(self, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Take the leading subspaces ``u`` (B, m, r), ``v`` (B, n, r) of this evaluation;
        return the drift of every stream since the last one (B,) (NaN at the first) and the
        angle between the subspaces of every pair of terms of a layer (pairs,), in degrees
        (the larger of the left and right sides' largest principal angle)."""
        # One batched angle computation per side: (previous, term a) against (current,
        # term b) — the drift of every (layer, term), then every pair of terms of a layer.
        first = (torch.cat([self.left, u[self.pair_a]]), torch.cat([self.right, v[self.pair_a]]))
        second = (torch.cat([u, u[self.pair_b]]), torch.cat([v, v[self.pair_b]]))
        angles = torch.maximum(largest_angle(first[0], second[0]),
                               largest_angle(first[1], second[1]))
        count = len(u)
        moved = angles[:count] if self.has_previous else torch.full_like(angles[:count],
                                                                         math.nan)
        self.left.copy_(u)
        self.right.copy_(v)
        self.has_previous = True
        return moved, angles[count:]
