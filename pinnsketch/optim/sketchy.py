"""Sketchy: Shampoo with Frequent-Directions sketches of its Kronecker factors (Feinberg,
Chen, Sun, Anil & Hazan 2023, "Sketchy: memory-efficient adaptive regularization with
frequent directions", NeurIPS; arXiv 2302.03764). METHOD.md §6.

For a weight matrix with gradients G_t (m×n), Shampoo keeps the factors

    L = Σ_t β^{T−t} (1 − β) G_t G_tᵀ  (m×m),    R = Σ_t β^{T−t} (1 − β) G_tᵀ G_t  (n×n)

and preconditions P(G) = L^{−1/4} G R^{−1/4}. Sketchy keeps each factor as a β-decayed
Frequent-Directions sketch B (ℓ×m, resp. ℓ×n; :class:`~pinnsketch.sketch.FrequentDirections`)
with its escaped mass ρ (0 ⪯ L − BᵀB ⪯ ρI), and uses, for BᵀB = V diag(λ) Vᵀ,

    L̃^{−1/4} = V diag((λ + ρ)^{−1/4}) Vᵀ + ρ^{−1/4} (I − V Vᵀ)

(ρ^{−1/4} read as 0 while ρ = 0: nothing has escaped, the complement holds no gradient
yet). With ℓ ≥ m the sketch is exact, ρ = 0 and this is Shampoo's (pseudo-)inverse root.
Eigenvalues below ``floor`` × the largest are numerical noise and count as 0, as in the
reference code (google-research/precondition, ``tearfree/sketchy.py``; its escaped mass
decays by √β per step, ours by β, the decay of the covariance it bounds).

The step, per tensor, grafts the Sketchy direction onto RMSprop's step length and then takes
momentum, the arrangement of the paper's experiments:

    v ← β v + (1 − β) G²,   A = G / (√(v / (1 − βᵗ)) + ε)           (diagonal graft)
    D = P(G) · ‖A‖_F / ‖P(G)‖_F   (matrices; A itself for vectors)
    m ← β₁ m + (1 − β₁) D,   θ ← θ − lr · m / (1 − β₁ᵗ)

Memory per m×n matrix: the diagonal state (2mn numbers, as Adam's) plus ℓ(m + n) + 2 for
the two sketches, against m² + n² for Shampoo's factors (:meth:`Sketchy.statistics_nbytes`).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from pinnsketch.sketch.frequent_directions import FrequentDirections

__all__ = ["Sketchy", "sketched_inverse_root"]


def sketched_inverse_root(sketch: FrequentDirections, *, power: float = 0.25,
                          floor: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The factors of (BᵀB + ρ)^{−power} on the sketch's subspace and ρ^{−power} off it.

    Returns:
        ``(V, roots, complement)``: V (d×k) orthonormal eigenvectors of BᵀB with eigenvalues
        above ``floor`` × the largest, ``roots`` (k,) = (λ + ρ)^{−power}, and ``complement``
        (0-dim) = ρ^{−power}, or 0 while ρ = 0.
    """
    _, sigma, vt = torch.linalg.svd(sketch.sketch, full_matrices=False)
    energy = sigma.square()
    keep = energy > floor * energy.max() if energy.numel() else energy > 0
    rho = sketch.dropped_mass
    roots = (energy[keep] + rho).pow(-power)
    complement = torch.where(rho > 0, rho.clamp_min(torch.finfo(rho.dtype).tiny).pow(-power),
                             torch.zeros_like(rho))
    return vt[keep].mT, roots, complement


def _precondition_axis(matrix: torch.Tensor, sketch: FrequentDirections, floor: float,
                       power: float) -> torch.Tensor:
    """L̃^{−power} @ matrix for the factor of ``matrix``'s rows (m×n, sketch of dim m)."""
    basis, roots, complement = sketched_inverse_root(sketch, power=power, floor=floor)
    coefficients = basis.mT @ matrix                            # k×n
    return complement * (matrix - basis @ coefficients) + basis @ (roots[:, None] * coefficients)


class Sketchy(torch.optim.Optimizer):
    """Sketchy-preconditioned momentum with RMSprop grafting (module docstring).

    Args:
        params: the parameters; 2-D ones get the two sketches, the others the diagonal step.
        lr: step size.
        betas: (β₁, β) — momentum, and the decay of both the diagonal second moment and the
            sketched factors.
        eps: ε of the diagonal graft.
        rank: ℓ, rows of each factor's sketch (min(ℓ, d) are used for an axis of size d).
        floor: relative eigenvalue cut-off of the sketched factors.

    State (``state_dict``, the torch protocol): per parameter ``step``, ``exp_avg`` (m),
    ``exp_avg_sq`` (v) and, for matrices, the left and right sketches' states.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, rank: int = 16, floor: float = 1e-12):
        if not lr > 0 or not all(0 <= b < 1 for b in betas) or not eps >= 0:
            raise ValueError(f"Sketchy: lr {lr!r} must be > 0, betas {betas!r} in [0, 1) "
                             f"and eps {eps!r} >= 0")
        if not isinstance(rank, int) or rank < 1 or not 0 <= floor < 1:
            raise ValueError(f"Sketchy: rank {rank!r} must be an integer >= 1 and floor "
                             f"{floor!r} in [0, 1)")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, rank=rank,
                                      floor=floor))
        if len(self.param_groups) != 1:
            raise ValueError("Sketchy takes one parameter group")
        self._sketches: dict[torch.Tensor, tuple[FrequentDirections, FrequentDirections]] = {}

    def _sketches_of(self, p: torch.Tensor) -> tuple[FrequentDirections, ...]:
        """The (left, right) sketches of matrix ``p``, created empty on first use."""
        if p not in self._sketches:
            group = self.param_groups[0]
            m, n = p.shape
            beta = group["betas"][1]
            self._sketches[p] = tuple(
                FrequentDirections(d, min(group["rank"], d), beta=beta, dtype=p.dtype,
                                   device=p.device) for d in (m, n))
        return self._sketches[p]

    def precondition(self, p: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """P(G) = L̃^{−1/4} G R̃^{−1/4} with ``p``'s current sketches (m×n)."""
        left, right = self._sketches_of(p)
        floor = self.param_groups[0]["floor"]
        half = _precondition_axis(grad, left, floor, 0.25)
        return _precondition_axis(half.mT, right, floor, 0.25).mT

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad, state = p.grad, self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            t = state["step"]
            state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            scale = (state["exp_avg_sq"] / (1 - beta2 ** t)).sqrt_().add_(group["eps"])
            direction = grad / scale                        # the diagonal graft
            if p.ndim == 2:
                left, right = self._sketches_of(p)
                weight = math.sqrt(1 - beta2)
                left.update(weight * grad.mT)               # rows g_j: Σ g_j g_jᵀ = G Gᵀ
                right.update(weight * grad)                 # rows of G: GᵀG
                shaped = self.precondition(p, grad)
                norm = shaped.norm()
                direction = torch.where(norm > 0, shaped * (direction.norm() / norm),
                                        direction)
            state["exp_avg"].mul_(beta1).add_(direction, alpha=1 - beta1)
            p.add_(state["exp_avg"], alpha=-group["lr"] / (1 - beta1 ** t))
        return loss

    def statistics_nbytes(self) -> dict[str, int]:
        """Bytes of the second-order statistics of the 2-D parameters: ``sketchy`` (both
        sketches, as held), ``shampoo`` (the m² + n² numbers of the exact factors)."""
        sketchy = shampoo = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim == 2:
                    sketchy += sum(s.nbytes() for s in self._sketches_of(p))
                    shampoo += (p.shape[0] ** 2 + p.shape[1] ** 2) * p.element_size()
        return {"sketchy": sketchy, "shampoo": shampoo}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        index = {id(p): i for i, p in enumerate(
            p for group in self.param_groups for p in group["params"])}
        state["sketches"] = {index[id(p)]: [s.state_dict() for s in pair]
                             for p, pair in self._sketches.items()}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        sketches = state_dict.pop("sketches")
        super().load_state_dict(state_dict)
        params = [p for group in self.param_groups for p in group["params"]]
        self._sketches = {}
        for i, pair in sketches.items():
            for sketch, saved in zip(self._sketches_of(params[int(i)]), pair):
                sketch.load_state_dict(saved)
