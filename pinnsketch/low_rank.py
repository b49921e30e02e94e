"""Dynamical low-rank layers: W = U S Vᵀ trained with the augmented backward-corrected
projector-splitting integrator (abc-PSI; Kusch, Schotthöfer & Walter 2025, arXiv 2502.03006).

A :class:`LowRankLinear` replaces an ``nn.Linear`` (``out × in`` weight W) by orthonormal
bases U (out × r), V (in × r) and a core S (r × r), and is trained in alternating phases:

- **K phase**: the trainable factor is K = U S (out × r) with V fixed, W = K Vᵀ.
- **K → L** (:meth:`LowRankLinear.augment`): Û = orth([K, U₀]) (out × 2r), the
  backward-corrected core Ŝ = Ûᵀ U₀ S₀ (2r × r), and L = V Ŝᵀ (in × 2r), so that
  W = Û Lᵀ = U₀ S₀ V₀ᵀ: the weight returns to the start of the K phase, whose steps are
  kept only through the basis Û they span (the backward correction).
- **L phase**: the trainable factor is L with Û fixed, W = Û Lᵀ.
- **L → K** (:meth:`LowRankLinear.truncate`): V̂ R = L (QR), core Rᵀ (2r × 2r), SVD
  Rᵀ = P Σ Qᵀ, and the new rank r' is the smallest with ‖σ_{r'+1:}‖ ≤ τ‖σ‖ (kept within
  [min_rank, max_rank]); U = Û P_{:r'}, S = Σ_{:r'}, V = V̂ Q_{:r'}, K = U S.

Shapes are allocated at ``max_rank`` once and sliced at the current rank, so parameter
shapes (and an optimiser's state, and a checkpoint) do not change when the rank does. The
forward pass is three thin matmuls, differentiable to any order (PINN residuals).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["LowRankLinear", "low_rank_layers", "replace_square_linears", "truncation_rank"]


class LowRankLinear(nn.Module):
    """A Linear layer ``in → out`` as W = U S Vᵀ of adaptive rank.

    Args:
        linear: the dense layer to start from; W is its rank-``rank`` truncated SVD, the
            bias is copied.
        rank: the initial rank r₀.
        max_rank: the largest rank (at most min(in, out) // 2, so that the augmented basis
            of 2r columns fits).
        tolerance: τ, the relative truncation tolerance (0 keeps every augmented direction
            up to ``max_rank``).
        min_rank: the smallest rank a truncation may leave.

    Attributes:
        K (out × max_rank), L (in × 2·max_rank): the trainable factors of the two phases
            (only their first r, resp. 2r, columns are used); bias (out,).
        rank: the current rank; phase: 0 in a K phase, 1 in an L phase (both saved with the
            model as the 0-d buffers ``rank_state`` and ``phase_state``).
    """

    def __init__(self, linear: nn.Linear, rank: int, max_rank: int, tolerance: float,
                 min_rank: int = 1):
        super().__init__()
        out_dim, in_dim = linear.weight.shape
        if not 1 <= min_rank <= rank <= max_rank <= min(out_dim, in_dim) // 2:
            raise ValueError(f"ranks must satisfy 1 <= min_rank ({min_rank}) <= rank ({rank}) "
                             f"<= max_rank ({max_rank}) <= min(in, out) // 2 "
                             f"({min(out_dim, in_dim) // 2})")
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        self.in_features, self.out_features = in_dim, out_dim
        self.max_rank, self.min_rank, self.tolerance = max_rank, min_rank, tolerance
        weight = linear.weight.detach()
        like = dict(dtype=weight.dtype, device=weight.device)
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        self.register_buffer("U", torch.zeros(out_dim, 2 * max_rank, **like))
        self.register_buffer("V", torch.zeros(in_dim, 2 * max_rank, **like))
        self.register_buffer("S", torch.zeros(2 * max_rank, 2 * max_rank, **like))
        # Saved with the model; mirrored as Python ints so that the forward pass never reads
        # a device tensor on the host (no sync on the hot path).
        self.register_buffer("rank_state", torch.tensor(rank))
        self.register_buffer("phase_state", torch.tensor(0))
        self._rank, self._phase = rank, 0
        self.register_load_state_dict_post_hook(_mirror_saved_rank)
        self.U[:, :rank], self.V[:, :rank] = u[:, :rank], vh[:rank].T
        self.S[:rank, :rank] = torch.diag(s[:rank])
        self.K = nn.Parameter(torch.zeros(out_dim, max_rank, **like))
        self.L = nn.Parameter(torch.zeros(in_dim, 2 * max_rank, **like))
        with torch.no_grad():
            self.K[:, :rank] = self.U[:, :rank] @ self.S[:rank, :rank]
        self.bias = nn.Parameter(linear.bias.detach().clone())

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def phase(self) -> int:
        return self._phase

    def _set(self, rank: int, phase: int) -> None:
        self._rank, self._phase = rank, phase
        self.rank_state.fill_(rank)
        self.phase_state.fill_(phase)

    @property
    def active(self) -> nn.Parameter:
        """The factor the current phase trains (K, or L)."""
        return self.L if self._phase else self.K

    def weight(self) -> torch.Tensor:
        """W (out × in), differentiable in the active factor."""
        r = self._rank
        if self._phase:
            return self.U[:, :2 * r] @ self.L[:, :2 * r].T
        return self.K[:, :r] @ self.V[:, :r].T

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        r = self._rank
        if self._phase:
            return (z @ self.L[:, :2 * r]) @ self.U[:, :2 * r].T + self.bias
        return (z @ self.V[:, :r]) @ self.K[:, :r].T + self.bias

    @torch.no_grad()
    def augment(self) -> None:
        """End of a K phase: augmented basis Û = orth([K, U₀]), backward-corrected core
        Ŝ = Ûᵀ U₀ S₀, L = V Ŝᵀ; the L phase begins from the K phase's starting weight."""
        if self._phase:
            raise RuntimeError("augment: the layer is already in its L phase")
        r = self._rank
        u0 = self.U[:, :r].clone()
        basis, _ = torch.linalg.qr(torch.cat([self.K[:, :r], u0], dim=1))  # out × 2r
        core = basis.T @ u0 @ self.S[:r, :r]  # 2r × r
        self.U[:, :2 * r] = basis
        self.L.zero_()
        self.L[:, :2 * r] = self.V[:, :r] @ core.T
        self._set(r, 1)

    @torch.no_grad()
    def truncate(self) -> None:
        """End of an L phase: V̂ R = L, SVD of the 2r × 2r core Rᵀ, truncation at the
        tolerance; the K phase begins at the new rank."""
        if not self._phase:
            raise RuntimeError("truncate: the layer is in its K phase (augment first)")
        r2 = 2 * self._rank
        v_hat, upper = torch.linalg.qr(self.L[:, :r2])  # in × 2r, 2r × 2r
        p, sigma, qh = torch.linalg.svd(upper.T)
        new_rank = truncation_rank(sigma, self.tolerance, self.min_rank, self.max_rank)
        self.U[:, :new_rank] = self.U[:, :r2] @ p[:, :new_rank]
        self.V[:, :new_rank] = v_hat @ qh[:new_rank].T
        self.U[:, new_rank:].zero_()
        self.V[:, new_rank:].zero_()
        self.S.zero_()
        self.S[:new_rank, :new_rank] = torch.diag(sigma[:new_rank])
        self.K.zero_()
        self.K[:, :new_rank] = self.U[:, :new_rank] @ self.S[:new_rank, :new_rank]
        self._set(new_rank, 0)

    def parameter_count(self) -> int:
        """Numbers that define the layer at its current rank: U, S, V and the bias."""
        r = self._rank
        return r * (self.in_features + self.out_features) + r * r + self.out_features


def _mirror_saved_rank(layer: LowRankLinear, _keys) -> None:
    layer._rank, layer._phase = int(layer.rank_state), int(layer.phase_state)


def truncation_rank(sigma: torch.Tensor, tolerance: float, low: int, high: int) -> int:
    """The smallest r' with ‖σ_{r':}‖₂ ≤ τ‖σ‖₂ (σ descending), clipped to [low, high]."""
    # tail[j] = ‖σ_{j:}‖ for j = 0 … len(σ) (the last 0): the first j within τ‖σ‖.
    tail = torch.flip(torch.cumsum(torch.flip(sigma ** 2, [0]), 0), [0]).sqrt()
    tail = torch.cat([tail, tail.new_zeros(1)])
    rank = int(torch.nonzero(tail <= tolerance * torch.linalg.vector_norm(sigma))[0])
    return max(low, min(high, rank))


def low_rank_layers(module: nn.Module) -> list[LowRankLinear]:
    """The :class:`LowRankLinear` layers of ``module``, in registration order."""
    return [m for m in module.modules() if isinstance(m, LowRankLinear)]


def replace_square_linears(module: nn.Module, width: int, *, rank: int, max_rank: int,
                           min_rank: int, tolerance: float) -> nn.Module:
    """``module`` with every ``width × width`` ``nn.Linear`` (the hidden layers of an MLP)
    replaced, in place, by a :class:`LowRankLinear` started from it."""
    for name, child in module.named_children():
        if type(child) is nn.Linear and child.weight.shape == (width, width):
            setattr(module, name, LowRankLinear(child, rank, max_rank, tolerance, min_rank))
        else:
            replace_square_linears(child, width, rank=rank, max_rank=max_rank,
                                   min_rank=min_rank, tolerance=tolerance)
    return module
