"""The optimisation: Adam steps, then L-BFGS chunks, with torch.optim-style state.

The trainer owns the optimisers, the collocation batch and its generator. It does no I/O:
the run loop (:mod:`pinnsketch.api`) decides when to evaluate, log and checkpoint.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from pinnsketch.config import SamplingConfig, TrainConfig
from pinnsketch.losses import term_losses, weighted_total
from pinnsketch.problems.base import Problem
from pinnsketch.sampling import Sampler

__all__ = ["NonFiniteLoss", "Trainer"]


class NonFiniteLoss(RuntimeError):
    """A loss term became NaN or infinite; carries the step and the term."""

    def __init__(self, step: int, term: str, value: float):
        super().__init__(f"non-finite loss at step {step}: term '{term}' = {value}")
        self.step, self.term, self.value = step, term, value


class Trainer:
    """Adam then L-BFGS on Σ_τ w_τ L_τ.

    Args:
        problem: the PDE; gives the residual dict.
        model: the network u_θ, already on ``device`` with ``dtype``.
        train, sampling: the validated config sections.
        terms: loss terms of this run, e.g. ``("pde", "bc", "ic", "data")``.
        observations: data rows ``(N, d + 1)`` for the ``data`` term, or None.
        device, dtype: where and in which precision the batch lives.
        monitor: an object with ``every``, ``state_dict``/``load_state_dict`` and
            ``observe(step, losses {term: float}, grads {term: {"layer<i>": G (d_out×d_in)}})``
            (a :class:`pinnsketch.sketch.monitor.SketchMonitor`), or None.
        extra_parameters: trainable tensors besides the model's (e.g. unknown PDE
            coefficients).
        sketched_data: a :class:`pinnsketch.sketch.sketched_grad.SketchedGradient` whose
            ``forward`` replaces the model for the ``data`` term (weight gradients from
            sketched activations), or None for exact gradients.
        distributed: a :class:`pinnsketch.distributed.DistributedContext`, or None. With
            it, points come from a rank-offset generator and losses and gradients are
            averaged over ranks every step.

    State (``state_dict``): step counters, both optimisers, the lr schedule, the sampling
    generator, the current batch and, if present, the monitor — everything an exact
    resume needs.
    """

    def __init__(self, problem: Problem, model: torch.nn.Module, *, train: TrainConfig,
                 sampling: SamplingConfig, terms: tuple[str, ...],
                 observations: torch.Tensor | None, device: torch.device, dtype: torch.dtype,
                 monitor: Any = None, extra_parameters: tuple[torch.Tensor, ...] = (),
                 sketched_data: Any = None, distributed: Any = None):
        self.problem, self.model, self.config = problem, model, train
        self.distributed = distributed
        self.sketched_data = sketched_data
        self.sampling, self.terms = sampling, terms
        self.weights = {term: float(train.weights.get(term, 1.0)) for term in terms}
        self.device, self.dtype = device, dtype
        self.monitor = monitor
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.parameters += list(extra_parameters)
        # Weight matrix of each Linear layer ("layer0", "layer1", …): what the monitor sees.
        weight_ids = {id(p): j for j, p in enumerate(self.parameters)}
        self._layer_weights = {f"layer{i}": weight_ids[id(layer.weight)]
                               for i, layer in enumerate(getattr(model, "linear_layers", []))}
        rank = distributed.rank if distributed is not None else 0
        self.generator = torch.Generator().manual_seed(train.seed + 7919 * rank)
        self.sampler = Sampler(problem.domain, sampling.method, self.generator)
        self.observations = observations
        self.adam = torch.optim.Adam(self.parameters, lr=train.lr)
        # A constant rate needs no scheduler (and its per-step bookkeeping).
        self.schedule = None if train.lr_decay == 1.0 else torch.optim.lr_scheduler.StepLR(
            self.adam, step_size=train.lr_decay_every, gamma=train.lr_decay)
        self.lbfgs = torch.optim.LBFGS(
            self.parameters, lr=1.0, max_iter=train.eval_every,
            history_size=train.lbfgs_history, tolerance_grad=train.lbfgs_tolerance_grad,
            tolerance_change=train.lbfgs_tolerance_change, line_search_fn="strong_wolfe")
        self.step = 0
        self.adam_done = 0
        self.lbfgs_done = 0
        self.lbfgs_stop: str | None = None  # why L-BFGS stopped before its budget, if it did
        self.last_losses: dict[str, float] = {}
        self._batch64: dict[str, torch.Tensor] = {}
        self.batch: dict[str, torch.Tensor] = {}
        self._draw_batch()

    # -- batch --------------------------------------------------------------------------------
    def _draw_batch(self, adaptive: bool = False) -> None:
        physics = tuple(t for t in self.terms if t != "data")
        self._batch64 = self.problem.collocation(self.sampler, self.sampling, physics)
        if adaptive and "pde" in self._batch64:
            self._batch64["pde"] = self._residual_adaptive_points(self.sampling.interior)
        if self.observations is not None:
            self._batch64["data"] = self.observations
        self._cast_batch()

    def _residual_adaptive_points(self, n: int) -> torch.Tensor:
        """RAD (Wu et al. 2023, k = c = 1): n of M uniform candidates, drawn without
        replacement with probability ∝ |r(z)| / mean|r| + 1, so points gather where the
        current residual is large while the whole domain stays covered."""
        candidates = self.sampler.interior(self.sampling.adaptive_candidates)
        magnitudes = []
        for chunk in candidates.split(8192):
            points = chunk.to(self.device, self.dtype).requires_grad_(True)
            residual = self.problem.pde_residual(self.model, points)
            magnitudes.append(residual.detach().abs().to("cpu", torch.float64))
        magnitude = torch.cat(magnitudes)
        weights = magnitude / magnitude.mean() + 1.0
        chosen = torch.multinomial(weights, min(n, len(candidates)), replacement=False,
                                   generator=self.generator)
        return candidates[chosen]

    def _cast_batch(self) -> None:
        # Physics terms differentiate through their points; data rows are constants.
        self.batch = {term: points.to(self.device, self.dtype).requires_grad_(term != "data")
                      for term, points in self._batch64.items()}

    # -- one evaluation of the objective ----------------------------------------------------------
    def losses(self) -> dict[str, torch.Tensor]:
        """Per-term losses on the current batch (graph kept)."""
        if self.sketched_data is None:
            return term_losses(self.problem.residuals(self.model, self.batch))
        physics = {t: p for t, p in self.batch.items() if t != "data"}
        residuals = self.problem.residuals(self.model, physics)
        residuals |= self.problem.residuals(self._sketched_forward, {"data": self.batch["data"]})
        return term_losses(residuals)

    def _sketched_forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.sketched_data.forward(self.model, points)

    def _check_finite(self, total: torch.Tensor, losses: Mapping[str, torch.Tensor]) -> None:
        # One host sync per step; on CPU it is free, on CUDA it is the price of stopping
        # at the first bad step rather than training on NaNs.
        if not torch.isfinite(total):
            bad = next((t for t, v in losses.items() if not torch.isfinite(v)), self.terms[0])
            raise NonFiniteLoss(self.step, bad, float(losses[bad].detach()))

    def _backward(self, losses: Mapping[str, torch.Tensor], total: torch.Tensor,
                  reported: Mapping[str, torch.Tensor]) -> None:
        """Fill ``.grad`` with ∇_θ total; on monitor steps per term, via explicit autograd.

        Per-term gradients come from ``torch.autograd.grad(L_τ, θ, retain_graph=True)``,
        not module hooks (building residuals with ``create_graph=True`` fires those too).
        Their weighted sum is the same gradient ``total.backward()`` gives, so the update
        is unchanged by monitoring.
        """
        monitor = self.monitor
        if monitor is None or self.step % monitor.every != 0:
            total.backward()
            if self.distributed is not None:
                self.distributed.average_([p.grad for p in self.parameters if p.grad is not None])
            return
        per_term = {}
        for i, term in enumerate(self.terms):
            keep = i < len(self.terms) - 1
            per_term[term] = torch.autograd.grad(losses[term], self.parameters,
                                                 retain_graph=keep, allow_unused=True)
        if self.distributed is not None:
            # Averaging each term's gradient averages their weighted sum too (linearity).
            self.distributed.average_([g for grads in per_term.values() for g in grads
                                       if g is not None])
        for j, p in enumerate(self.parameters):
            grads = [(self.weights[t], per_term[t][j]) for t in self.terms
                     if per_term[t][j] is not None]
            p.grad = sum(w * g for w, g in grads) if grads else None
        layer_grads = {term: {name: grads[j] if grads[j] is not None
                              else torch.zeros_like(self.parameters[j])
                              for name, j in self._layer_weights.items()}
                       for term, grads in per_term.items()}
        # ``reported`` holds the losses averaged over ranks, like the gradients above.
        monitor.observe(self.step, {t: float(v) for t, v in reported.items()}, layer_grads)

    # -- Adam -----------------------------------------------------------------------------------
    def adam_step(self) -> dict[str, torch.Tensor]:
        """One Adam step (hot path). Returns the detached per-term losses before the step.

        Raises:
            NonFiniteLoss: if a term is NaN/inf; the parameters are left unchanged.
        """
        every = self.sampling.resample_every
        if every and self.adam_done and self.adam_done % every == 0:
            self._draw_batch(adaptive=self.sampling.adaptive == "rad")
        self.adam.zero_grad(set_to_none=True)
        losses = self.losses()
        total = weighted_total(losses, self.weights)
        reported = self._global_losses(losses)
        reported_total = (total.detach() if self.distributed is None
                          else weighted_total(reported, self.weights))
        self._check_finite(reported_total, reported)
        self._backward(losses, total, reported)
        self.adam.step()
        if self.schedule is not None:
            self.schedule.step()
        self.step += 1
        self.adam_done += 1
        return reported

    def _global_losses(self, losses: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Detached per-term losses, averaged over ranks when distributed (a sync point),
        so every rank sees the same values and stops together on a non-finite one."""
        detached = {t: v.detach() for t, v in losses.items()}
        if self.distributed is None:
            return detached
        stacked = torch.stack(list(detached.values()))
        self.distributed.average_([stacked])
        return dict(zip(detached, stacked))

    # -- L-BFGS ---------------------------------------------------------------------------------
    def lbfgs_chunk(self, iterations: int) -> str | None:
        """Up to ``iterations`` L-BFGS iterations (strong Wolfe line search).

        Returns:
            None if the chunk ran in full (or ran out of its function-evaluation budget
            while still making progress); otherwise why the phase stopped — the reason is
            also kept in ``lbfgs_stop``.

        Raises:
            NonFiniteLoss: if the objective became NaN/inf.
        """
        last: dict[str, torch.Tensor] = {}

        def closure():
            self.lbfgs.zero_grad(set_to_none=True)
            losses = self.losses()
            total = weighted_total(losses, self.weights)
            total.backward()
            reported = self._global_losses(losses)
            if self.distributed is not None:
                self.distributed.average_([p.grad for p in self.parameters if p.grad is not None])
            total = weighted_total(reported, self.weights)
            last.update(losses=reported, total=total)
            return total

        every = self.sampling.lbfgs_resample_every
        adaptive = self.sampling.adaptive == "rad"
        if self.lbfgs_done == 0 and adaptive and not self.lbfgs.state:
            self._draw_batch(adaptive=True)  # L-BFGS keeps one batch: make it the best one
        elif every and self.lbfgs_done and self.lbfgs_done % every == 0 and self.lbfgs.state:
            self._draw_batch(adaptive=adaptive)
            self.lbfgs.state.clear()  # curvature pairs belong to the old points
        group = self.lbfgs.param_groups[0]
        group["max_iter"] = iterations
        # Iterations are the budget; each strong-Wolfe line search is capped at 25
        # evaluations by torch, so this bound never cuts a progressing chunk short.
        group["max_eval"] = 25 * iterations
        state = self.lbfgs.state[self.parameters[0]]
        before = state.get("n_iter", 0)
        self.lbfgs.step(closure)
        done = state.get("n_iter", 0) - before
        self.step += done
        self.lbfgs_done += done
        self.last_losses = {t: float(v) for t, v in last["losses"].items()}
        self._check_finite(last["total"], last["losses"])
        if done >= iterations:
            return None
        self.lbfgs_stop = self._lbfgs_stop_reason(float(last["total"]), done)
        return self.lbfgs_stop

    def _lbfgs_stop_reason(self, loss: float, done: int) -> str | None:
        """Recompute torch.optim.LBFGS's exit tests (it does not report which one fired)."""
        group = self.lbfgs.param_groups[0]
        state = self.lbfgs.state[self.parameters[0]]
        grad = torch.cat([p.grad.reshape(-1) for p in self.parameters if p.grad is not None])
        if grad.abs().max() <= group["tolerance_grad"]:
            return (f"gradient tolerance: max |∇L| <= tolerance_grad "
                    f"({group['tolerance_grad']:g}) at iteration {self.lbfgs_done}")
        d, t = state.get("d"), state.get("t")
        if d is not None and t is not None and float((d * t).abs().max()) <= group["tolerance_change"]:
            return (f"step tolerance: line search step below tolerance_change "
                    f"({group['tolerance_change']:g}) at iteration {self.lbfgs_done}; "
                    f"the line search could not decrease the loss further")
        prev = state.get("prev_loss")
        if prev is not None and abs(loss - float(prev)) < group["tolerance_change"]:
            return (f"loss tolerance: loss change below tolerance_change "
                    f"({group['tolerance_change']:g}) at iteration {self.lbfgs_done}")
        if done == 0:
            return (f"line search failure: no iteration completed within "
                    f"{group['max_eval']} function evaluations at iteration {self.lbfgs_done}")
        return None  # evaluation budget of this chunk spent while still progressing

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "step": self.step, "adam_done": self.adam_done, "lbfgs_done": self.lbfgs_done,
            "lbfgs_stop": self.lbfgs_stop, "last_losses": dict(self.last_losses),
            "model": self.model.state_dict(),
            "extra_parameters": [p.detach().clone() for p in
                                 self.parameters[len(list(self.model.parameters())):]],
            "adam": self.adam.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "lbfgs": self.lbfgs.state_dict(), "generator": self.generator.get_state(),
            "batch": {t: p.clone() for t, p in self._batch64.items()},
        }
        if self.monitor is not None:
            state["monitor"] = self.monitor.state_dict()
        if self.sketched_data is not None:
            state["sketched_data"] = self.sketched_data.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step, self.adam_done = state["step"], state["adam_done"]
        self.lbfgs_done = state["lbfgs_done"]
        self.lbfgs_stop = state["lbfgs_stop"]
        self.last_losses = dict(state["last_losses"])
        self.model.load_state_dict(state["model"])
        n_model = len(list(self.model.parameters()))
        with torch.no_grad():
            for p, saved in zip(self.parameters[n_model:], state["extra_parameters"]):
                p.copy_(saved)
        self.adam.load_state_dict(state["adam"])
        if self.schedule is not None:
            self.schedule.load_state_dict(state["schedule"])
        self.lbfgs.load_state_dict(state["lbfgs"])
        self.generator.set_state(state["generator"])
        self._batch64 = {t: p.clone() for t, p in state["batch"].items()}
        self._cast_batch()
        if self.monitor is not None:
            self.monitor.load_state_dict(state["monitor"])
        if self.sketched_data is not None:
            self.sketched_data.load_state_dict(state["sketched_data"])
