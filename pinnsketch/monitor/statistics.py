"""Gradient statistics of the monitor: pure functions of tensors.

Every statistic here is a pure function of tensors (batched over leading dimensions), so the
monitor, the tests and the diagnosis compute them the same way. Definitions (METHOD.md §4;
G is the gradient ∂L_τ/∂W_ℓ of one loss term τ with respect to one weight matrix, d_out × d_in,
and Ḡ its bias-corrected exponential moving average over checks):

Exact every check (from the gradients themselves):

- **norm**: ‖G‖_F.
- **cosine**: cos(vec G_a, vec G_b) between two terms, per layer and over the whole network.
- **alignment**: the alignment score of Wang et al. 2025, A = 2‖mean_τ G_τ/‖G_τ‖‖² − 1 over
  all T terms, per layer and network-wide, in [−1, 1] (1: all terms agree; two exactly
  opposed terms give −1; T orthogonal terms 2/T − 1).
- **imbalance** (Wang, Teng & Perdikaris 2021, Algorithm 1): λ̂ = max|∇_W L_ref| / mean|∇_W L_τ|
  per layer (their Algorithm takes max and mean over all weights; the network-wide value is
  kept too). L_ref is the PDE residual term; the gradients are those of the unweighted terms,
  so λ̂ is the weight their learning-rate annealing would give τ.

Of Ḡ, read every ``spectral_every`` checks — exact where the monitor keeps Ḡ, estimates
where it keeps a sketch (``notes/monitor.md`` gives their error on real PINN gradients):

- **EMA norm**: ‖Ḡ‖_F.
- **SNR**: ‖Ḡ‖_F / sqrt(EMA of ‖G‖²_F) ∈ [0, 1] (the bound is Jensen's inequality; a sketch's
  estimate is clipped at 1) — near 1 the term pushes the layer in a consistent direction,
  near 0 its gradient is noise that averages out.
- **effective rank** (erank): exp(H(p)), p_j = σ_j² / Σ_{i≤r} σ_i², of Ḡ's r leading
  singular values (r the monitor's rank clipped to the layer): in [1, r], 1 for a rank-one
  Ḡ, r for r equal leading values. Taken over the leading r, not the whole spectrum,
  because that is the part a rank-r sketch estimates well.
- **drift**: the largest principal angle, in degrees, between the leading rank-r singular
  subspaces of Ḡ at two successive spectral evaluations (left and right subspaces; the
  larger of the two). 0° is a frozen subspace, 90° a new one.
- **subspace angle**: the same angle between two terms' leading subspaces.
"""
from __future__ import annotations

import math
import torch

__all__ = ["alignment_score", "effective_rank", "imbalance_ratios", "largest_angle",
           "term_cosines"]

_TINY = 1e-30  # guards divisions by an exactly-zero norm (an unused layer or a solved term)


def effective_rank(sigma: torch.Tensor) -> torch.Tensor:
    """exp of the Shannon entropy of σ_j²/Σσ² (Roy & Vetterli 2007, on energies).

    Args:
        sigma: singular values ``(..., k)``, non-negative.

    Returns:
        ``(...)``: in [1, k]; NaN where all σ are 0 (no gradient: no spectrum).
    """
    energy = sigma.square()
    total = energy.sum(-1, keepdim=True)
    p = energy / total
    entropy = -(p * torch.log(p.clamp_min(_TINY))).sum(-1)
    return torch.where(total.squeeze(-1) > 0, entropy.exp(), torch.full_like(entropy, math.nan))


def largest_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The largest principal angle (degrees) between two subspaces; ``(...)``.

    Accurate also for small angles: it is arcsin of the distance ‖(I − aaᵀ)b‖₂ rather than
    arccos of a cosine near 1 (which loses half the digits).
    """
    residual = b - a @ (a.transpose(-1, -2) @ b)
    sine = torch.linalg.matrix_norm(residual, ord=2).clamp(0.0, 1.0)
    return torch.rad2deg(torch.arcsin(sine))


def alignment_score(cosines: torch.Tensor) -> torch.Tensor:
    """Wang et al. 2025: A = 2‖(1/T) Σ_τ u_τ‖² − 1 with u_τ = G_τ/‖G_τ‖.

    Args:
        cosines: pairwise cosine matrices ``(..., T, T)`` (ones on the diagonal).

    Returns:
        ``(...)`` in [−1, 1]; for two terms it equals their cosine.
    """
    t = cosines.shape[-1]
    return 2.0 * cosines.sum((-1, -2)) / (t * t) - 1.0


def imbalance_ratios(amax: torch.Tensor, amean: torch.Tensor, reference: int,
                     others: list[int], numel: torch.Tensor) -> list[torch.Tensor]:
    """Wang et al.'s λ̂ = max|∇L_ref| / mean|∇L_τ| from per-layer max and mean of |G|
    ``(L, T)``: per layer ``(L·(T−1),)`` and network-wide ``(T−1,)`` (layer means weighted
    by their ``numel`` (L,))."""
    rest = amean[:, others]
    per_layer = amax[:, reference:reference + 1] / rest.clamp_min(1e-300)
    overall_mean = (rest * numel[:, None]).sum(0) / numel.sum()
    return [per_layer.reshape(-1), amax[:, reference].max() / overall_mean.clamp_min(1e-300)]


def term_cosines(gram: torch.Tensor, pair_a: torch.Tensor,
                 pair_b: torch.Tensor) -> list[torch.Tensor]:
    """From per-layer Gram matrices of the terms' flattened gradients ``(L, T, T)``:
    cos(vec G_a, vec G_b) of the pairs ``(pair_a, pair_b)`` per layer ``(L·P,)`` and
    network-wide ``(P,)``, then the alignment score per layer ``(L,)`` and network-wide
    ``(1,)``."""
    def cosines(g: torch.Tensor) -> torch.Tensor:                   # (..., T, T)
        norms = torch.diagonal(g, dim1=-2, dim2=-1).clamp_min(1e-300).sqrt()
        return g / (norms[..., :, None] * norms[..., None, :])

    per_layer, network = cosines(gram), cosines(gram.sum(0))
    pick = lambda c: c[..., pair_a, pair_b]
    return [pick(per_layer).reshape(-1), pick(network),
            alignment_score(per_layer), alignment_score(network).reshape(1)]
