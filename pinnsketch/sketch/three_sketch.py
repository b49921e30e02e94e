"""EMA three-sketch of a stream of m×n matrices (Tropp, Yurtsever, Udell & Cevher 2019).

The target is the exponential moving average Ā_t = βĀ_{t−1} + (1−β)A_t of a stream A_1, A_2, …
(arXiv 2510.00442, §3 of METHOD.md), or with ``beta=None`` the plain sum Σ_t A_t. Ā is never
formed: three small sketches of it are updated linearly (METHOD.md §2),

    X = ΥĀ (k×n, co-range),   Y = ĀΩᵀ (m×k, range),   Z = ΦĀΨᵀ (s×s, core),

plus, for the a-posteriori error estimate, W = ΘĀ (q×n) with q extra Gaussian probes. Because
every update is linear, the sketches of the EMA are exactly the EMAs of per-step sketches
(arXiv 2510.00442, Lemma 4.1).

Reconstruction (Tropp et al. 2019, eq. 4.3; no explicit inverse anywhere):
  1. Q = orth(Y) (m×k), P = orth(Xᵀ) (n×k), by reduced QR.
  2. C = (ΦQ)⁺ Z ((ΨP)⁺)ᵀ (k×k): QR of ΦQ and ΨP and two triangular solves.
  3. Â = Q C Pᵀ; the rank-r approximation is Q [[C]]_r Pᵀ (SVD of the k×k core only).
Bias correction divides by the weight the stream holds, 1 − β^t for an EMA; it only scales C
(and W), since orth() is scale-invariant.

A-priori guarantee (Tropp et al. 2019, Theorem 5.1; real Gaussian maps, needs s > k + 1):
    E‖A − Â‖²_F ≤ (s−1)/(s−k−1) · min_{ϱ < k−1} (k+ϱ−1)/(k−ϱ−1) · τ²_{ϱ+1}(A),
with τ²_{ϱ+1}(A) = Σ_{j>ϱ} σ_j²(A); by the triangle inequality
E‖A − Q[[C]]_rPᵀ‖_F ≤ τ_{r+1}(A) + 2 (E‖A − Â‖²_F)^{1/2}.

Sizes (``PRESETS``, r the target rank; both clipped to k ≤ s ≤ min(m, n), see
:func:`sketch_sizes`):
  - ``"rol"`` (default) k = 2r+1, s = 2k+1: the sizes of Trilinos ROL's sketch; the guarantee
    holds (s − k − 1 = k + 1) at half the memory of ``"tropp"``.
  - ``"tropp"`` k = 4r+1, s = 2k+1: Tropp et al.'s default; smallest error, twice the memory.
  - ``"paper"`` k = s = 2r+1: the size used in arXiv 2510.00442. ΦQ is square, the theorem
    gives no bound (s − k − 1 < 0) and ‖(ΦQ)⁻¹‖ amplifies the spectral tail: exact on rank
    ≤ r, but rank-r errors 5–85× the SVD optimum on decaying spectra (notes/sketch_core.md).
    For faithful reproduction only.

Memory (numbers, constant in the number of updates): sketches k(m+n) + s² + qn; test matrices
(k+s)(m+n) + qm. See :meth:`ThreeSketch.nbytes`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

__all__ = ["PRESETS", "ThreeSketch", "sketch_sizes"]

STATE_VERSION = 1

# preset name -> (k, s) as a function of the rank r; the keys feed the error message.
_SIZE_RULES: dict[str, Callable[[int], tuple[int, int]]] = {
    "rol": lambda r: (2 * r + 1, 4 * r + 3),
    "tropp": lambda r: (4 * r + 1, 8 * r + 3),
    "paper": lambda r: (2 * r + 1, 2 * r + 1),
}
PRESETS: tuple[str, ...] = tuple(_SIZE_RULES)
_DTYPES = (torch.float32, torch.float64)


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if not ok or (high is not None and value > high):
        allowed = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
        raise ValueError(f"{name}: got {value!r}, must be {allowed}")
    return value


def sketch_sizes(rank: int, preset: str = "rol",
                 shape: tuple[int, int] | None = None) -> tuple[int, int]:
    """Range size k and core size s of a rank-``rank`` sketch under ``preset``.

    With ``shape`` = (m, n) the sizes are clipped to k ≤ s ≤ min(m, n): at k = min(m, n) the
    range or co-range sketch already spans its whole space, and any s ≥ k then recovers the
    matrix exactly, so larger sizes would only cost memory.

    Raises:
        ValueError: on an unknown preset (the message lists ``PRESETS``), a rank < 1, or, with
            ``shape``, a rank above min(m, n).
    """
    if preset not in _SIZE_RULES:
        raise ValueError(f"preset: got {preset!r}, allowed: {', '.join(PRESETS)}")
    if shape is None:
        k, s = _SIZE_RULES[preset](_check_int("rank", rank, 1))
        return k, s
    m, n = _check_int("m", shape[0], 1), _check_int("n", shape[1], 1)
    k, s = _SIZE_RULES[preset](_check_int("rank", rank, 1, min(m, n)))
    return min(k, m, n), min(s, m, n)


class ThreeSketch:
    """EMA three-sketch of an m×n matrix stream (module docstring for the maths).

    Args:
        m, n: shape of each streamed matrix.
        rank: target rank r, in [1, min(m, n)]; sets k and s through ``preset``.
        generator: draws the Gaussian test matrices Υ (k×m), Ω (k×n), Φ (s×m), Ψ (s×n) and
            Θ (q×m) once, then a seed for the private generator that :meth:`resize` redraws
            from (so a resized sketch never touches the caller's generator again).
        beta: EMA factor in [0, 1): Ā_t = βĀ_{t−1} + (1−β)A_t; 0 keeps only the latest matrix.
            ``None``: plain accumulation Ā_t = Ā_{t−1} + A_t (Tropp et al.'s streaming sum),
            with no bias correction.
        preset: ``"rol"`` (default), ``"tropp"`` or ``"paper"`` (module docstring).
        bias_correction: divide by the stream weight (1 − β^t for the EMA) so that early
            estimates are not shrunk towards zero. Ignored when ``beta`` is None.
        error_probes: q ≥ 0 Gaussian probes for :meth:`error_estimate`; 0 disables it.
        dtype: torch.float32 or torch.float64 (sketches and test matrices).
        device: where the state lives (default CPU); the generator may live elsewhere.

    Attributes:
        m, n, rank, k, s, q: sizes. steps: updates since construction or the last re-draw.

    Memory (constant in the number of updates; :meth:`nbytes`): sketches k(m+n) + s² + qn
    numbers, test matrices (k+s)(m+n) + qm numbers.

    Raises:
        ValueError: a size, rank, beta, preset, probe count or dtype out of range.
        TypeError: ``generator`` is not a torch.Generator.
    """

    def __init__(self, m: int, n: int, rank: int, *, generator: torch.Generator,
                 beta: float | None = 0.9, preset: str = "rol", bias_correction: bool = True,
                 error_probes: int = 4, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None):
        self.k, self.s = sketch_sizes(rank, preset, (m, n))
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator: got {type(generator).__name__}, need a torch.Generator")
        if beta is not None and (isinstance(beta, bool) or not isinstance(beta, (int, float))
                                 or not 0.0 <= beta < 1.0):
            raise ValueError(f"beta: got {beta!r}, must be a float in [0, 1) or None")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype: got {dtype}, allowed: torch.float32, torch.float64")
        self.m, self.n, self.rank, self.preset = m, n, rank, preset
        self.q = _check_int("error_probes", error_probes, 0)
        self.beta = None if beta is None else float(beta)
        self.bias_correction = bool(bias_correction)
        self.dtype = dtype
        self.device = torch.device("cpu") if device is None else torch.device(device)
        # Caller's generator: the test matrices, then a seed for later re-draws (one host read).
        upsilon, omega, phi, psi, theta = (
            self._gaussian(rows, cols, generator) for rows, cols in
            ((self.k, m), (self.k, n), (self.s, m), (self.s, n), (self.q, m)))
        self._generator = torch.Generator(device=generator.device)
        self._generator.manual_seed(int(torch.randint(0, 2 ** 62, (1,), generator=generator,
                                                      device=generator.device)))
        self._set_tensors(torch.cat([upsilon, theta, phi]), torch.cat([omega, psi]))

    # -- storage ---------------------------------------------------------------------------
    def _gaussian(self, rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
        # Drawn where the generator lives, then moved: a CPU generator serves any device.
        out = torch.randn(rows, cols, generator=generator, dtype=self.dtype,
                          device=generator.device)
        return out.to(self.device)

    def _set_tensors(self, left: torch.Tensor, right: torch.Tensor,
                     xw: torch.Tensor | None = None, y: torch.Tensor | None = None,
                     z: torch.Tensor | None = None, steps: int = 0, mass: float = 0.0) -> None:
        """Install test matrices and sketches (zeros where None) and bind the views."""
        k, s, q = self.k, self.s, self.q
        # Left maps stacked [Υ; Θ; Φ] ((k+q+s)×m) so one GEMM gives ΥA, ΘA and ΦA; the sketch
        # rows [X; W] ((k+q)×n) sit together so one kernel updates both.
        self._left, self._right = left, right
        zeros = dict(dtype=self.dtype, device=self.device)
        self._xw = torch.zeros(k + q, self.n, **zeros) if xw is None else xw
        self._y = torch.zeros(self.m, k, **zeros) if y is None else y
        self._z = torch.zeros(s, s, **zeros) if z is None else z
        self._omega_t, self._psi_t = right[:k].mT, right[k:].mT
        self.steps, self._mass = steps, mass

    @property
    def x(self) -> torch.Tensor:
        """Co-range sketch X = ΥĀ (k×n), uncorrected."""
        return self._xw[:self.k]

    @property
    def y(self) -> torch.Tensor:
        """Range sketch Y = ĀΩᵀ (m×k), uncorrected."""
        return self._y

    @property
    def z(self) -> torch.Tensor:
        """Core sketch Z = ΦĀΨᵀ (s×s), uncorrected. ‖Z‖_F is not an estimate of ‖Ā‖_F."""
        return self._z

    @property
    def w(self) -> torch.Tensor:
        """Error sketch W = ΘĀ (q×n), uncorrected."""
        return self._xw[self.k:]

    def test_matrices(self) -> dict[str, torch.Tensor]:
        """Views of Υ (k×m), Ω (k×n), Φ (s×m), Ψ (s×n), Θ (q×m)."""
        k, q = self.k, self.q
        return {"upsilon": self._left[:k], "omega": self._right[:k], "phi": self._left[k + q:],
                "psi": self._right[k:], "theta": self._left[k:k + q]}

    # -- updates (hot path) ------------------------------------------------------------------
    def update(self, A: torch.Tensor) -> None:
        """Fold the m×n matrix ``A`` into the sketches: one EMA step (or a sum if beta is None).

        Hot path: one (k+q+s)×m×n GEMM, two small ``addmm_`` and one ``lerp_``; no host sync,
        no allocation beyond the (k+q+s)×n product. ``A`` is cast to the sketch dtype/device.
        """
        if self.beta is None:
            self.linear_update(A, 1.0, 1.0)
            return
        A, la = self._left_product(A)
        eta = 1.0 - self.beta
        kq = self.k + self.q
        self._xw.lerp_(la[:kq], eta)                                    # βX + (1−β)ΥA, W alike
        self._y.addmm_(A, self._omega_t, beta=self.beta, alpha=eta)
        self._z.addmm_(la[kq:], self._psi_t, beta=self.beta, alpha=eta)
        self.steps += 1
        self._mass = self.beta * self._mass + eta

    def linear_update(self, H: torch.Tensor, theta: float, eta: float) -> None:
        """General linear update Ā ← θĀ + ηH (Tropp et al.'s LinearUpdate).

        The bias-correction divisor follows the same recursion (weight ← θ·weight + η), so a
        time-varying EMA, ``linear_update(H, β_t, 1−β_t)``, is still corrected exactly.
        """
        H, la = self._left_product(H)
        kq = self.k + self.q
        self._xw.mul_(theta).add_(la[:kq], alpha=eta)
        self._y.addmm_(H, self._omega_t, beta=theta, alpha=eta)
        self._z.addmm_(la[kq:], self._psi_t, beta=theta, alpha=eta)
        self.steps += 1
        self._mass = theta * self._mass + eta

    def _left_product(self, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(A in the sketch dtype/device, [ΥA; ΘA; ΦA] ((k+q+s)×n)) from one GEMM."""
        if A.shape != (self.m, self.n):
            raise ValueError(f"A: got shape {tuple(A.shape)}, expected ({self.m}, {self.n})")
        A = A.to(self._left)                           # no-op when dtype and device match
        return A, self._left @ A

    def _correction(self) -> float:
        if self.steps == 0:
            raise RuntimeError("ThreeSketch: no update since construction or the last re-draw")
        return self._mass if (self.beta is not None and self.bias_correction) else 1.0

    # -- reconstruction ------------------------------------------------------------------------
    def reconstruct(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Factors of the (bias-corrected) estimate Â = Q C Pᵀ.

        Returns:
            Q (m×k) and P (n×k) with orthonormal columns, C (k×k). Cost O((m+n)k² + s²k).

        Raises:
            RuntimeError: before the first update (after construction or a re-draw).
        """
        correction = self._correction()
        q = torch.linalg.qr(self._y).Q                      # 1. range basis
        p = torch.linalg.qr(self.x.mT).Q                    #    co-range basis
        u1, t1 = torch.linalg.qr(self._left[self.k + self.q:] @ q)     # 2. ΦQ = U1 T1
        u2, t2 = torch.linalg.qr(self._psi_t.mT @ p)                    #    ΨP = U2 T2
        left = torch.linalg.solve_triangular(t1, u1.mT @ self._z, upper=True)  # (ΦQ)⁺Z, k×s
        # C = left ((ΨP)⁺)ᵀ = left U2 T2⁻ᵀ: solve C T2ᵀ = left U2 from the right.
        core = torch.linalg.solve_triangular(t2.mT, left @ u2, upper=False, left=False)
        return q, core / correction, p

    def _truncated_core(self, rank: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Q, C or [[C]]_r, P): the rank-r truncation costs one k×k SVD."""
        q, core, p = self.reconstruct()
        if rank is not None:
            r = _check_int("rank", rank, 1)
            u, sigma, vh = torch.linalg.svd(core)
            core = (u[:, :r] * sigma[:r]) @ vh[:r]
        return q, core, p

    def matrix(self, rank: int | None = None) -> torch.Tensor:
        """Â = Q C Pᵀ, or Â_r = Q [[C]]_r Pᵀ for ``rank`` r (m×n, formed explicitly: for tests
        and small layers)."""
        q, core, p = self._truncated_core(rank)
        return q @ core @ p.mT

    def frobenius_norm(self) -> torch.Tensor:
        """‖Â‖_F = ‖C‖_F (Q and P have orthonormal columns); a 0-dim tensor."""
        return torch.linalg.matrix_norm(self.reconstruct()[1])

    def singular_values(self) -> torch.Tensor:
        """The k singular values of Â, descending: those of the core C (Â = (QU_C)Σ(PV_C)ᵀ)."""
        return torch.linalg.svdvals(self.reconstruct()[1])

    def leading_subspaces(self, r: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Leading left (m×r) and right (n×r) singular vectors of Â: Q U_C and P V_C from the
        SVD C = U_C Σ V_Cᵀ of the core. ``r`` defaults to the sketch rank, at most k."""
        r = _check_int("r", self.rank if r is None else r, 1, self.k)
        q, core, p = self.reconstruct()
        u, _, vh = torch.linalg.svd(core)
        return q @ u[:, :r], p @ vh[:r].mT

    # -- a-posteriori error (Tropp et al. 2019, §6) ----------------------------------------------
    def _probe_residual(self, q: torch.Tensor, core: torch.Tensor,
                        p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(‖W − ΘÂ‖_F, ‖W‖_F) with W bias-corrected and Â = Q core Pᵀ; Θ is independent of
        Â, which is what makes the estimate unbiased."""
        if self.q == 0:
            raise RuntimeError("error estimate: this sketch has error_probes=0")
        w = self.w / self._correction()
        theta_a = (self._left[self.k:self.k + self.q] @ q) @ core @ p.mT     # ΘÂ, q×n
        return torch.linalg.matrix_norm(w - theta_a), torch.linalg.matrix_norm(w)

    def error_estimate(self, rank: int | None = None) -> torch.Tensor:
        """Estimate of ‖Ā − Â‖_F (or of ‖Ā − Â_r‖_F for ``rank`` r): ‖W − ΘÂ‖_F / √q.

        Its square is unbiased, E = ‖Ā − Â‖²_F, with relative standard deviation at most
        √(2/q) (Θ Gaussian and independent of Â; Tropp et al. 2019, §6). Cost O(q(m+n)k).

        Raises:
            RuntimeError: with ``error_probes=0``, or before the first update.
        """
        residual, _ = self._probe_residual(*self._truncated_core(rank))
        return residual / math.sqrt(self.q)

    def relative_error_estimate(self, rank: int | None = None) -> torch.Tensor:
        """‖W − ΘÂ‖_F / ‖W‖_F: the probes' estimate of ‖Ā − Â‖_F / ‖Ā‖_F (NaN if W = 0).

        The same probes estimate numerator and denominator, so the ratio is 0 for an exact
        reconstruction and 1 for Â = 0, whatever the scale of Ā. ``rank`` as in
        :meth:`error_estimate`.
        """
        residual, norm = self._probe_residual(*self._truncated_core(rank))
        return residual / norm

    def scree(self) -> torch.Tensor:
        """Upper estimates of the relative error of every truncation rank r = 1..k, shape (k,).

        Entry r−1 is (τ_{r+1}(Â) + err) / ‖Ā‖, with τ_{r+1}(Â)² = Σ_{j>r} σ_j(Â)², err the
        probe estimate of ‖Ā − Â‖_F and ‖Ā‖_F ≈ ‖W‖_F/√q: the square root of Tropp et al.'s
        upper scree estimate (§6.5, eq. 6.10), i.e. the triangle inequality
        ‖Ā − Â_r‖ ≤ ‖Â − Â_r‖ + ‖Ā − Â‖ with estimated terms. Feeds
        :meth:`pinnsketch.sketch.rank.RankController.step`. Cost: one reconstruction, one
        k×k SVD.
        """
        q, core, p = self.reconstruct()
        residual, norm = self._probe_residual(q, core, p)
        energy = torch.linalg.svdvals(core).square()
        tail = (energy.sum() - energy.cumsum(0)).clamp_min(0).sqrt()     # τ_{r+1}(Â), r=1..k
        # residual and norm are in probe units (√q × Frobenius); bring τ to the same units.
        return (tail * math.sqrt(self.q) + residual) / norm

    # -- rank changes ---------------------------------------------------------------------------
    def resize(self, rank: int) -> None:
        """Change the target rank r (used by the rank controller).

        Policy:
          - Smaller or equal sizes (k' ≤ k and s' ≤ s): truncate **in place**. The leading
            rows of Υ, Ω, Φ, Ψ are themselves Gaussian test matrices and the leading blocks of
            X, Y, Z are exactly their sketches, so nothing is lost and nothing re-warms.
          - Larger sizes: the new rows' sketches of the past stream cannot be rebuilt, so all
            test matrices except Θ are **re-drawn** (private generator) and every sketch
            (W included) restarts from zero — re-warm; with bias correction the first
            estimate after the next update is that update's matrix, not a shrunk one.
        """
        k, s = sketch_sizes(rank, self.preset, (self.m, self.n))
        self.rank = rank
        if k <= self.k and s <= self.s:
            t = self.test_matrices()
            left = torch.cat([t["upsilon"][:k], t["theta"], t["phi"][:s]])
            right = torch.cat([t["omega"][:k], t["psi"][:s]])
            xw = torch.cat([self.x[:k], self.w])
            y, z = self._y[:, :k].clone(), self._z[:s, :s].clone()
            self.k, self.s = k, s
            self._set_tensors(left, right, xw, y, z, self.steps, self._mass)
            return
        theta = self.test_matrices()["theta"]
        self.k, self.s = k, s
        upsilon, omega, phi, psi = (self._gaussian(rows, cols, self._generator) for rows, cols
                                    in ((k, self.m), (k, self.n), (s, self.m), (s, self.n)))
        self._set_tensors(torch.cat([upsilon, theta, phi]), torch.cat([omega, psi]))

    # -- memory and state --------------------------------------------------------------------------
    def sketch_nbytes(self) -> int:
        """Bytes of X, Y, Z, W: (k(m+n) + s² + qn) × element size."""
        return sum(t.numel() * t.element_size() for t in (self._xw, self._y, self._z))

    def test_matrix_nbytes(self) -> int:
        """Bytes of Υ, Ω, Φ, Ψ, Θ: ((k+s)(m+n) + qm) × element size."""
        return sum(t.numel() * t.element_size() for t in (self._left, self._right))

    def nbytes(self) -> int:
        """Total bytes held: :meth:`sketch_nbytes` + :meth:`test_matrix_nbytes`. Constant in
        the number of updates (the private generator's few-kB state is not counted)."""
        return self.sketch_nbytes() + self.test_matrix_nbytes()

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs: sizes, EMA clock, sketches, test matrices and the
        private generator's state (tensors cloned)."""
        return {"version": STATE_VERSION, "m": self.m, "n": self.n, "rank": self.rank,
                "k": self.k, "s": self.s, "error_probes": self.q, "preset": self.preset,
                "beta": self.beta, "bias_correction": self.bias_correction,
                "steps": self.steps, "mass": self._mass, "left": self._left.clone(),
                "right": self._right.clone(), "xw": self._xw.clone(), "y": self._y.clone(),
                "z": self._z.clone(), "generator": self._generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output (any rank; m, n, q and preset must match).

        Raises:
            ValueError: on a version, shape, probe-count or preset mismatch.
        """
        for key, mine in (("version", STATE_VERSION), ("m", self.m), ("n", self.n),
                          ("error_probes", self.q), ("preset", self.preset)):
            if state[key] != mine:
                raise ValueError(f"state['{key}']: got {state[key]!r}, this sketch has {mine!r}")
        k, s = sketch_sizes(state["rank"], self.preset, (self.m, self.n))
        if (k, s) != (state["k"], state["s"]):
            raise ValueError(f"state: sizes (k, s) = {(state['k'], state['s'])} do not follow "
                             f"from rank {state['rank']} and preset {self.preset!r}")
        self.rank, self.k, self.s = state["rank"], k, s
        self.beta = state["beta"]
        self.bias_correction = state["bias_correction"]
        own = {name: state[name].to(device=self.device, dtype=self.dtype, copy=True)
               for name in ("left", "right", "xw", "y", "z")}
        self._set_tensors(own["left"], own["right"], own["xw"], own["y"], own["z"],
                          int(state["steps"]), float(state["mass"]))
        self._generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return (f"ThreeSketch(m={self.m}, n={self.n}, rank={self.rank}, k={self.k}, s={self.s}, "
                f"q={self.q}, preset={self.preset!r}, beta={self.beta}, steps={self.steps})")
