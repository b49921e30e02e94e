"""Inverse-Hessian updates of the (self-scaled) Broyden family, O(p²) each.

Every update has the one form (Urbán, Stefanou & Pons 2025, arXiv 2405.04230, eq. 19)::

    H⁺ = (H − H y yᵀH / yᵀHy + φ · yᵀHy · v vᵀ) / τ + ρ s sᵀ,   v = ρ s − H y / yᵀHy,

with ρ = 1 / sᵀy, and the methods differ in the Broyden parameter φ and the scaling τ:

- ``bfgs``: φ = 1, τ = 1 (this form is algebraically the usual BFGS update);
- ``ssbfgs_ol``: φ = 1, τ = 1/b (Oren–Luenberger scaling), b = −α ρ sᵀg;
- ``ssbfgs_ab``: φ = 1, τ = min(1, 1/b) (Al-Baali);
- ``ssbroyden1`` / ``ssbroyden2``: θ and τ of the self-scaled Broyden family
  (Kiyani et al. 2025, arXiv 2501.16371), φ = (1 − θ)/(1 + aθ), a = b h − 1, h = ρ yᵀHy.

The formulas follow the authors' code (github.com/jorgeurban/self_scaled_algorithms_pinns,
``modified_optimize.py``, ``_minimize_bfgs``, branches ``SSBFGS_OL``, ``SSBFGS_AB``,
``SSBroyden1``, ``SSBroyden2``, lines 1579–1690, with ``initial_scale=False``).
After each update the two triangles are averaged, so ``H`` stays bitwise symmetric.
"""
from __future__ import annotations

import math

import torch

__all__ = ["UPDATES", "broyden_parameters", "inverse_hessian_update"]

UPDATES = ("bfgs", "ssbfgs_ol", "ssbfgs_ab", "ssbroyden1", "ssbroyden2")


def broyden_parameters(update: str, b: float, h: float, n: int) -> tuple[float, float]:
    """``(φ, τ)`` of ``update`` from b = −α ρ sᵀg, h = ρ yᵀHy and the dimension ``n``."""
    if update == "bfgs":
        return 1.0, 1.0
    if update == "ssbfgs_ol":
        return 1.0, 1.0 / b
    if update == "ssbfgs_ab":
        return 1.0, min(1.0, 1.0 / b)
    if update not in ("ssbroyden1", "ssbroyden2"):
        raise ValueError(f"update: got {update!r} (allowed: {', '.join(UPDATES)})")
    a = b * h - 1.0  # ≥ 0 by Cauchy–Schwarz in the H-metric
    if a <= 0.0:  # H y ∥ s: v = 0 and every member of the family coincides
        theta = 0.0
    else:
        root = math.sqrt(abs(a) / (1.0 + a))
        rho_minus = min(1.0, h * (1.0 - root))
        theta_minus = (rho_minus - 1.0) / a
        if update == "ssbroyden2":
            theta = max(theta_minus, min(1.0 / rho_minus, (1.0 - b) / b))
        else:
            theta_plus = max(1.0, b * (1.0 + root))
            if b == 1.0:
                theta = theta_minus
            elif b > 1.0:
                theta = max(theta_minus, 1.0 / (1.0 - b))
            else:
                theta = min(theta_plus, 1.0 / (1.0 - b))
    rho_k = min(1.0, 1.0 / b)
    sigma = 1.0 + theta * a
    sigma_n = abs(sigma) ** (1.0 / (1.0 - n)) if n > 1 else 1.0
    tau = min(rho_k * sigma_n, sigma) if theta <= 0 else rho_k * min(sigma_n, 1.0 / theta)
    return (1.0 - theta) / (1.0 + a * theta), tau


def inverse_hessian_update(H: torch.Tensor, s: torch.Tensor, y: torch.Tensor,
                           g: torch.Tensor, alpha: float, update: str) -> bool:
    """Update the inverse Hessian approximation ``H`` ``(p, p)`` in place.

    Args:
        H: symmetric positive definite ``(p, p)``.
        s: the step x⁺ − x ``(p,)``; y: the gradient change g⁺ − g ``(p,)``.
        g: the gradient at x (before the step) ``(p,)``; alpha: the line-search step length.
        update: one of :data:`UPDATES`.

    Returns:
        False (``H`` untouched) when the curvature condition sᵀy > 0 fails or the update
        would lose positive definiteness (τ ≤ 0 or yᵀHy ≤ 0); True otherwise.
    """
    sy = float(s.dot(y))
    if not sy > 0.0:
        return False
    rho = 1.0 / sy
    Hy = H @ y
    yHy = float(y.dot(Hy))
    if not yHy > 0.0:
        return False
    b = -alpha * rho * float(s.dot(g))
    phi, tau = broyden_parameters(update, b, yHy * rho, H.shape[0])
    if not (tau > 0.0 and math.isfinite(tau) and math.isfinite(phi)):
        return False
    v = rho * s - Hy / yHy
    H.addr_(Hy, Hy, alpha=-1.0 / yHy)
    H.addr_(v, v, alpha=phi * yHy)
    H.div_(tau)
    H.addr_(s, s, alpha=rho)
    # BLAS rank-one updates round the two triangles differently (fused multiply-adds on
    # some entries only): average them, so H stays bitwise symmetric (an O(p²) pass).
    H.copy_(H.add(H.mT).mul_(0.5))
    return True
