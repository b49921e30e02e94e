"""The top of a loss Hessian's spectrum from Hessian-vector products: Lanczos with full
reorthogonalisation (Golub & Van Loan, §10.1; the method of PyHessian, Yao et al. 2020, used
on PINN losses by Rathore et al. 2024, "Challenges in training PINNs: a loss landscape
perspective", ICML).

m steps of Lanczos from a random start build an orthonormal basis Q (p×m) of the Krylov
space and the tridiagonal T = QᵀHQ; the eigenvalues of T (Ritz values) approach H's extreme
eigenvalues first, the largest within a few steps when it is separated. The basis is the
constant memory of the method: m·p numbers, whatever the run length; nothing is kept
between calls. Exact for m = p (up to round-off): the test compares with an
eigendecomposition of the full Hessian.
"""
from __future__ import annotations

from typing import Callable

import torch

__all__ = ["lanczos_ritz_values"]


def lanczos_ritz_values(hvp: Callable[[torch.Tensor], torch.Tensor], dim: int, steps: int, *,
                        generator: torch.Generator, dtype: torch.dtype = torch.float64,
                        device: torch.device | str = "cpu") -> torch.Tensor:
    """Ritz values (ascending, at most ``steps``) of a symmetric operator.

    Args:
        hvp: v ``(dim,)`` ↦ H v ``(dim,)``.
        dim: p, the operator's size; steps: m ≤ p Lanczos steps (fewer if the Krylov space
            closes: an invariant subspace was found and its Ritz values are exact).
        generator: the start vector's randomness (CPU generator).

    Returns:
        ``(k,)`` eigenvalues of T, k ≤ m; the last is the estimate of λ_max(H).
    """
    if not 1 <= steps <= dim:
        raise ValueError(f"steps: got {steps!r}, must be in [1, dim = {dim}]")
    start = torch.randn(dim, generator=generator, dtype=dtype).to(device)
    basis = torch.empty(steps, dim, dtype=dtype, device=device)
    basis[0] = start / start.norm()
    alphas, betas = [], []
    for j in range(steps):
        w = hvp(basis[j])
        alphas.append(torch.dot(basis[j], w))
        for _ in range(2):  # full reorthogonalisation, twice ("twice is enough")
            w = w - basis[:j + 1].mT @ (basis[:j + 1] @ w)
        beta = w.norm()
        if j == steps - 1 or beta <= 1e-12 * max(abs(float(a)) for a in alphas):
            break
        betas.append(beta)
        basis[j + 1] = w / beta
    k = len(alphas)
    tridiagonal = torch.diag(torch.stack(alphas))
    if k > 1:
        off = torch.stack(betas[:k - 1])
        tridiagonal = tridiagonal + torch.diag(off, 1) + torch.diag(off, -1)
    return torch.linalg.eigvalsh(tridiagonal)
