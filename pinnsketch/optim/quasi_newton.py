"""Dense quasi-Newton optimiser (BFGS and its self-scaled variants) in the torch.optim style.

Each iteration takes the direction d = −H g, a strong-Wolfe line search along it (torch's
own, the one ``torch.optim.LBFGS`` uses) and an O(p²) update of the dense inverse-Hessian
approximation H (:func:`~pinnsketch.optim.updates.inverse_hessian_update`). H persists across
calls and across changes of the objective (a PINN's collocation points redrawn): call
:meth:`QuasiNewton.objective_changed` then, which drops the cached loss and gradient and
keeps H, as the self-scaled PINN papers do.

Everything stays on the parameters' device; the line search reads the loss on the host
(one sync per function evaluation, as L-BFGS does).
"""
from __future__ import annotations

import logging
from typing import Callable

import torch
from torch.optim.lbfgs import _strong_wolfe

from pinnsketch.optim.updates import UPDATES, inverse_hessian_update

__all__ = ["QuasiNewton"]

log = logging.getLogger(__name__)


class QuasiNewton(torch.optim.Optimizer):
    """BFGS-type optimiser with a dense inverse Hessian (p² numbers).

    Args:
        params: the parameters (one group).
        update: one of :data:`~pinnsketch.optim.updates.UPDATES`.
        max_iter: iterations per :meth:`step` call.
        tolerance_grad: stop when max |g| falls to it.
        tolerance_change: stop when the step (max |t d|) falls to it, or the loss change
            to it times |loss| (relative: PINN losses end many decades below 1).
        c1, c2: strong-Wolfe constants (sufficient decrease, curvature).
        max_ls: function evaluations per line search.
        max_hessian_bytes: refuse to build an H larger than this (bytes).

    State (per the torch protocol, in ``state_dict``): ``H``, the cached loss ``f`` and
    gradient ``g`` at the current point, ``n_iter``, and whether H is a fresh identity.
    After :meth:`step`,
    ``stop_reason`` says why it returned before ``max_iter`` iterations (None otherwise).
    """

    def __init__(self, params, *, update: str = "ssbroyden2", max_iter: int = 20,
                 tolerance_grad: float = 1e-12, tolerance_change: float = 1e-16,
                 c1: float = 1e-4, c2: float = 0.9, max_ls: int = 25,
                 max_hessian_bytes: float = 2.0 ** 30):
        if update not in UPDATES:
            raise ValueError(f"update: got {update!r} (allowed: {', '.join(UPDATES)})")
        super().__init__(params, dict(update=update, max_iter=max_iter,
                                      tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change, c1=c1, c2=c2,
                                      max_ls=max_ls))
        if len(self.param_groups) != 1:
            raise ValueError("QuasiNewton takes one parameter group")
        self._params = self.param_groups[0]["params"]
        self.n = sum(p.numel() for p in self._params)
        nbytes = self.n ** 2 * self._params[0].element_size()
        if nbytes > max_hessian_bytes:
            raise ValueError(
                f"a dense inverse Hessian of {self.n} parameters needs {nbytes / 2**20:.0f} "
                f"MiB, above the limit of {max_hessian_bytes / 2**20:.0f} MiB; use a smaller "
                f"network, raise the limit, or use L-BFGS (O(p) memory)")
        self.stop_reason: str | None = None

    # -- flat views of the parameters ----------------------------------------------------------
    def _flat_grad(self) -> torch.Tensor:
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in self._params])

    def _flat_params(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self._params])

    def _set_params(self, flat: torch.Tensor) -> None:
        offset = 0
        with torch.no_grad():
            for p in self._params:
                p.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()

    def objective_changed(self) -> None:
        """The loss function changed (new points): forget f and g, keep H."""
        state = self.state[self._params[0]]
        state.pop("f", None)
        state.pop("g", None)

    # -- one call: up to max_iter iterations ---------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> float:  # type: ignore[override]
        """Run up to ``max_iter`` iterations; ``closure`` re-evaluates the loss and fills
        ``.grad``. Returns the loss at the final point."""
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("n_iter", 0)
        if "g" not in state:
            state["f"], state["g"] = float(closure()), self._flat_grad()
        if "H" not in state:
            state["H"] = self._identity()
            state["fresh_H"] = True
        f, g, H = state["f"], state["g"], state["H"]
        self.stop_reason = None
        x = self._flat_params()

        def evaluate(x0: torch.Tensor, t: float, d: torch.Tensor):
            self._set_params(x0 + t * d)
            loss = float(closure())
            return loss, self._flat_grad()

        for _ in range(group["max_iter"]):
            if float(g.abs().max()) <= group["tolerance_grad"]:
                self.stop_reason = (f"gradient tolerance: max |∇L| <= "
                                    f"{group['tolerance_grad']:g}")
                break
            d = -(H @ g)
            gtd = float(g.dot(d))
            if not gtd < 0.0:  # H lost positive definiteness in round-off
                log.warning("quasi-Newton: -H g is not a descent direction at iteration %d; "
                            "H reset to the identity", state["n_iter"])
                H.copy_(self._identity())
                state["fresh_H"] = True
                d, gtd = -g.clone(), -float(g.dot(g))
            t = min(1.0, 1.0 / float(g.abs().sum())) if state["fresh_H"] else 1.0
            f_new, g_new, t, _ = _strong_wolfe(
                evaluate, x, t, d, f, g, gtd, c1=group["c1"], c2=group["c2"],
                tolerance_change=group["tolerance_change"], max_ls=group["max_ls"])
            if not f_new < f:
                self._set_params(x)
                self.stop_reason = (f"line search failure: no decrease along -H g within "
                                    f"{group['max_ls']} evaluations (loss {f:.6e})")
                break
            s = t * d
            x = x + s
            self._set_params(x)
            if not inverse_hessian_update(H, s, g_new - g, g, t, group["update"]):
                log.info("quasi-Newton: update skipped at iteration %d (curvature "
                         "condition s·y > 0 failed)", state["n_iter"])
            state["fresh_H"] = False
            state["n_iter"] += 1
            change, f, g = abs(f - f_new), f_new, g_new
            if float(s.abs().max()) <= group["tolerance_change"]:
                self.stop_reason = (f"step tolerance: max |step| <= "
                                    f"{group['tolerance_change']:g}")
                break
            if change <= group["tolerance_change"] * abs(f):
                self.stop_reason = (f"loss tolerance: relative loss change below "
                                    f"{group['tolerance_change']:g}")
                break
        state["f"], state["g"] = f, g
        return f

    def _identity(self) -> torch.Tensor:
        p = self._params[0]
        return torch.eye(self.n, dtype=p.dtype, device=p.device)
