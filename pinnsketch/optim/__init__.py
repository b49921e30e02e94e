"""Optimisers beyond torch.optim: dense self-scaled quasi-Newton methods (pure torch)."""
from pinnsketch.optim.quasi_newton import QuasiNewton
from pinnsketch.optim.updates import UPDATES, inverse_hessian_update

__all__ = ["QuasiNewton", "UPDATES", "inverse_hessian_update"]
