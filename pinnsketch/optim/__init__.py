"""Optimisers beyond torch.optim: dense self-scaled quasi-Newton methods and Sketchy
(pure torch)."""
from pinnsketch.optim.quasi_newton import QuasiNewton
from pinnsketch.optim.sketchy import Sketchy
from pinnsketch.optim.updates import UPDATES, inverse_hessian_update

__all__ = ["QuasiNewton", "Sketchy", "UPDATES", "inverse_hessian_update"]
