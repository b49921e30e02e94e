"""The optimisation: Adam steps, then L-BFGS chunks, with torch.optim-style state.

The trainer owns the optimisers, the collocation batch and its generator. It does no I/O:
the schedule (:mod:`pinnsketch.training.schedule`) decides when to evaluate and checkpoint.

Hot path: a step does no host sync. Non-finite losses are recorded on the device (the first
bad step and its losses) and read by :meth:`Trainer.raise_if_nonfinite` at evaluations;
distributed, the losses, the gradients and the stop flag travel in one all-reduce.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from pinnsketch.config import SamplingConfig, TrainConfig
from pinnsketch.errors import NonFiniteLoss
from pinnsketch.optim import QuasiNewton
from pinnsketch.problems.base import Problem
from pinnsketch.sampling import Sampler
from pinnsketch.training.adaptive import residual_adaptive_points
from pinnsketch.training.attention import ResidualAttention
from pinnsketch.training.balancing import LossBalancer
from pinnsketch.training.causal import CausalWeights
from pinnsketch.training.lbfgs_stop import lbfgs_stop_reason
from pinnsketch.training.low_rank import low_rank_schedule
from pinnsketch.training.marching import TimeMarching
from pinnsketch.training.objective import adam_phase_losses, term_losses, weighted_total
from pinnsketch.training.optimizers import first_order_optimizer, second_order_optimizer

__all__ = ["Trainer"]


class Trainer:
    """Adam then L-BFGS on Σ_τ w_τ L_τ.

    Args:
        problem: the PDE; gives the residual dict.
        model: the network u_θ, already on ``device`` with ``dtype``.
        train, sampling: the validated config sections.
        terms: loss terms of this run, e.g. ``("pde", "bc", "ic", "data")``.
        observations: data rows ``(N, d + 1)`` for the ``data`` term, or None.
        device, dtype: where and in which precision the batch lives.
        monitor: a :class:`pinnsketch.monitor.SketchMonitor` (cadences ``every``,
            ``quasi_newton_every``; ``observe``, ``state_dict``), or None.
        extra_parameters: trainable tensors besides the model's (e.g. unknown PDE
            coefficients).
        sketched_data: a :class:`pinnsketch.sketch.sketched_grad.SketchedGradient` whose
            ``forward`` replaces the model for the ``data`` term, or None (exact).
        distributed: a :class:`pinnsketch.training.distributed.DistributedContext` (each
            rank draws its own points; losses and gradients averaged every step), or None.
        sampler_seed: seed of this rank's collocation generator (a stream of
            :func:`pinnsketch.training.build.seed_streams`).

    State (``state_dict``): step counters, both optimisers, the lr schedule, the sampling
    generator, the current batch and, if present, the monitor — everything an exact
    resume needs.
    """

    def __init__(self, problem: Problem, model: torch.nn.Module, *, train: TrainConfig,
                 sampling: SamplingConfig, terms: tuple[str, ...],
                 observations: torch.Tensor | None, device: torch.device, dtype: torch.dtype,
                 monitor: Any = None, extra_parameters: tuple[torch.Tensor, ...] = (),
                 sketched_data: Any = None, distributed: Any = None, sampler_seed: int = 0,
                 low_rank_substeps: int = 0):
        self.problem, self.model, self.config = problem, model, train
        self.distributed = distributed
        self.sketched_data = sketched_data
        self.sampling, self.terms = sampling, terms
        initial = {term: float(train.weights.get(term, 1.0)) for term in terms}
        balancing = train.balancing
        self.balancer = (LossBalancer(balancing.scheme, balancing.every, balancing.ema, initial)
                         if balancing.scheme != "none" else None)
        # The weights in force: the balancer's own dict when it adapts them.
        self.weights = self.balancer.weights if self.balancer is not None else initial
        self.device, self.dtype = device, dtype
        self.monitor = monitor
        time = problem.domain.time
        self.causal = (CausalWeights(train.causal.chunks, train.causal.tolerance, *time,
                                     average=distributed and distributed.average_)
                       if train.causal.chunks and "pde" in terms and time is not None else None)
        self.attention = (ResidualAttention(sampling.attention_eta, sampling.attention_gamma,
                                            maximum=distributed and distributed.maximum_)
                          if sampling.attention == "rba" else None)
        windows = train.time_marching.windows
        self.marching = TimeMarching(windows, train.adam_steps) if windows else None
        self.low_rank = low_rank_schedule(model, low_rank_substeps)  # None without such layers
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.parameters += list(extra_parameters)
        # Weight matrix of each Linear layer ("layer0", "layer1", …): what the monitor sees.
        weight_ids = {id(p): j for j, p in enumerate(self.parameters)}
        self._layer_weights = {f"layer{i}": weight_ids[id(layer.weight)]
                               for i, layer in enumerate(getattr(model, "linear_layers", []))}
        self.generator = torch.Generator().manual_seed(sampler_seed)
        self.sampler = Sampler(problem.domain, sampling.method, self.generator)
        self.observations = observations
        self.adam = first_order_optimizer(self.parameters, train)  # Adam or Sketchy
        # A constant rate needs no scheduler (and its per-step bookkeeping).
        self.schedule = None if train.lr_decay == 1.0 else torch.optim.lr_scheduler.StepLR(
            self.adam, step_size=train.lr_decay_every, gamma=train.lr_decay)
        # The phase after Adam (kept under the name lbfgs: its budget is train.lbfgs_steps).
        self.lbfgs = second_order_optimizer(self.parameters, train)
        self.step = self.adam_done = self.lbfgs_done = 0
        self.lbfgs_stop: str | None = None  # why L-BFGS stopped before its budget, if it did
        self.quasi_newton_evaluations = 0  # objective evaluations after Adam: the check cadence
        self.last_losses: dict[str, float] = {}
        self._batch64: dict[str, torch.Tensor] = {}
        self.batch: dict[str, torch.Tensor] = {}
        # The first non-finite step and its losses, kept on the device (no sync per step).
        self._step_t = torch.zeros((), dtype=torch.long, device=device)
        self._bad_step = torch.full((), -1, dtype=torch.long, device=device)
        self._bad_losses = torch.zeros(len(terms), dtype=torch.float64, device=device)
        sizes = {"interior": sampling.interior, "boundary": sampling.boundary,
                 "initial": sampling.initial}
        # Point sets per term (a system's equations share the pde points), in term order.
        points = dict.fromkeys(problem.point_set(t) for t in terms)
        self._counts = {p: sizes[problem.term_measures[p]] for p in points
                        if p in problem.term_measures}
        self._draw_batch()

    # -- batch --------------------------------------------------------------------------------
    def _draw_batch(self, adaptive: bool = False) -> None:
        if self.marching is not None:  # the window of this Adam step (all of it after Adam)
            self.sampler.time_fraction = self.marching.fraction(self.adam_done)
        self._batch64 = self.problem.collocation(self.sampler, self._counts)
        if adaptive and "pde" in self._batch64:
            self._batch64["pde"] = residual_adaptive_points(
                self.problem, self.model, self.sampler, self.sampling.interior,
                self.sampling.adaptive_candidates, self.generator)
        if self.observations is not None:
            self._batch64["data"] = self.observations
        if self.attention is not None:
            self.attention.reset()  # the multipliers belonged to the old points
        self._cast_batch()

    def _cast_batch(self) -> None:
        # Physics terms differentiate through their points; data rows are constants.
        self.batch = {term: points.to(self.device, self.dtype).requires_grad_(term != "data")
                      for term, points in self._batch64.items()}

    # -- one evaluation of the objective ----------------------------------------------------------
    def losses(self, adam_phase: bool = False) -> dict[str, torch.Tensor]:
        """Per-term losses on the current batch (graph kept); with ``adam_phase``, those the
        Adam phase minimises: residual attention (which updates its multipliers) and causal
        weighting of the pde loss, where on."""
        if self.sketched_data is None:
            residuals = self.problem.residuals(self.model, self.batch)
        else:
            physics = {t: p for t, p in self.batch.items() if t != "data"}
            residuals = self.problem.residuals(self.model, physics)
            residuals |= self.problem.residuals(self._sketched_forward,
                                                {"data": self.batch["data"]})
        if not adam_phase:
            return term_losses(residuals)
        return adam_phase_losses(residuals, self.batch["pde"][:, -1] if self.causal else None,
                                 attention=self.attention, causal=self.causal)

    def metrics(self) -> dict[str, object]:
        """Training quantities for the metrics record, where on: the last causal weights,
        adaptive loss weights, attention, low-rank ranks, the sketched-gradient rank, the
        monitor's adaptive sketch ranks."""
        record = {}
        for part in (self.causal, self.balancer, self.attention, self.low_rank,
                     self.sketched_data, self.monitor):
            if part is not None:
                record |= part.metrics()
        return record

    def _ntk_residuals(self) -> dict[str, torch.Tensor]:
        """Residuals on the first ``train.balancing.points`` points of each term (exact
        network, also for a sketched data term: the NTK is of the model)."""
        count = self.config.balancing.points
        few = {t: p[:count].detach().requires_grad_(t != "data") for t, p in self.batch.items()}
        return self.problem.residuals(self.model, few)

    def _sketched_forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.sketched_data.forward(self.model, points)

    def _track_finite(self, reported: Mapping[str, torch.Tensor]) -> None:
        """Record, on the device, the first step whose losses are not all finite."""
        stacked = torch.stack([reported[t] for t in self.terms]).to(torch.float64)
        fresh = (self._bad_step < 0) & ~torch.isfinite(stacked).all()
        self._bad_step = torch.where(fresh, self._step_t, self._bad_step)
        self._bad_losses = torch.where(fresh, stacked, self._bad_losses)
        self._step_t += 1

    def raise_if_nonfinite(self) -> None:
        """Raise :class:`NonFiniteLoss` naming the first bad step and term (a host sync:
        call it at evaluations, before anything is written)."""
        bad_step = int(self._bad_step)
        if bad_step < 0:
            return
        losses = self._bad_losses.cpu().tolist()
        term = next((t for t, v in zip(self.terms, losses) if not math.isfinite(v)),
                    self.terms[0])
        raise NonFiniteLoss(bad_step, term, losses[self.terms.index(term)])

    def _backward(self, losses: Mapping[str, torch.Tensor], total: torch.Tensor, stop: bool,
                  observe: bool, phase: str, step: int,
                  balance: bool = False) -> tuple[dict[str, torch.Tensor], bool]:
        """Fill ``.grad`` with ∇_θ total; if ``observe`` or ``balance``, per term via explicit
        autograd, and hand those gradients to the monitor (``observe``: a check of ``phase``
        at ``step``) and to the grad-norm balancer (``balance``: new weights from the next
        step on). The per-term gradients are taken once for both.

        Per-term gradients come from ``torch.autograd.grad(L_τ, θ, retain_graph=True)``,
        not module hooks (building residuals with ``create_graph=True`` fires those too).
        Their weighted sum is the same gradient ``total.backward()`` gives, so the update
        is unchanged by monitoring.

        Returns:
            The detached per-term losses and whether a stop was asked for — distributed,
            averaged over ranks and any rank's request, in the step's one all-reduce
            together with the gradients (averaging each term's gradient averages their
            weighted sum too, by linearity).
        """
        per_term = {}
        if observe or balance:
            for i, term in enumerate(self.terms):
                keep = i < len(self.terms) - 1
                per_term[term] = torch.autograd.grad(losses[term], self.parameters,
                                                     retain_graph=keep, allow_unused=True)
            grads = [g for term_grads in per_term.values() for g in term_grads if g is not None]
        else:
            total.backward()
            grads = [p.grad for p in self.parameters if p.grad is not None]
        reported = {t: v.detach() for t, v in losses.items()}
        if self.distributed is not None:
            stacked = torch.stack(list(reported.values()))
            flag = stacked.new_full((1,), float(stop))
            self.distributed.average_(grads + [stacked, flag])
            reported = dict(zip(reported, stacked))
            stop = bool(flag > 0)  # sync point: every rank must agree to stop together
        if per_term:
            for j, p in enumerate(self.parameters):
                weighted = [(self.weights[t], per_term[t][j]) for t in self.terms
                            if per_term[t][j] is not None]
                p.grad = sum(w * g for w, g in weighted) if weighted else None
        if observe:
            layer_grads = {term: {name: term_grads[j] if term_grads[j] is not None
                                  else torch.zeros_like(self.parameters[j])
                                  for name, j in self._layer_weights.items()}
                           for term, term_grads in per_term.items()}
            self.monitor.observe(step, {t: float(v) for t, v in reported.items()}, layer_grads,
                                 phase=phase, weights=self.weights)
        if balance:  # after the monitor: it records the weights this step used
            self.balancer.update_from_gradients(per_term)
        return reported, stop

    def evaluate_losses(self) -> dict[str, float]:
        """Per-term losses on the current batch, without a step (rank-averaged; a sync)."""
        losses = {t: v.detach() for t, v in self.losses().items()}
        if self.distributed is not None:
            stacked = torch.stack(list(losses.values()))
            self.distributed.average_([stacked])
            losses = dict(zip(losses, stacked))
        return {t: float(v) for t, v in losses.items()}

    def agree_to_stop(self, requested: bool) -> bool:
        """Whether any rank asked to stop (a collective when distributed; Ctrl-C reaches
        ranks at different steps, and all must stop at the same one)."""
        if self.distributed is None:
            return requested
        flag = torch.tensor([float(requested)], device=self.device)
        self.distributed.average_([flag])
        return bool(flag > 0)

    # -- Adam -----------------------------------------------------------------------------------
    def adam_step(self, stop: bool = False) -> tuple[dict[str, torch.Tensor], bool]:
        """One Adam step (hot path: no host sync in one process).

        Args:
            stop: this process was asked to stop (Ctrl-C) after this step.

        Returns:
            The detached per-term losses before the step (rank-averaged), and whether any
            rank asked to stop. A non-finite loss is recorded, not raised: see
            :meth:`raise_if_nonfinite`.
        """
        every = self.sampling.resample_every
        if ((every and self.adam_done and self.adam_done % every == 0)
                or (self.marching is not None and self.marching.starts_stage(self.adam_done))):
            self._draw_batch(adaptive=self.sampling.adaptive == "rad")
        self.adam.zero_grad(set_to_none=True)
        losses = self.losses(adam_phase=True)
        total = weighted_total(losses, self.weights)
        observe = self.monitor is not None and self.step % self.monitor.every == 0
        balance = self.balancer is not None and self.balancer.due(self.adam_done)
        reported, stop = self._backward(losses, total, stop, observe, "adam", self.step,
                                        balance=balance and self.balancer.scheme == "grad_norm")
        if balance and self.balancer.scheme == "ntk":
            self.balancer.update_from_ntk(self._ntk_residuals, self.parameters,
                                          self.distributed.average_ if self.distributed else None)
        self._track_finite(reported)
        self.adam.step()
        if self.schedule is not None:
            self.schedule.step()
        self.step += 1
        self.adam_done += 1
        if self.low_rank is not None:
            self.low_rank.after_step(self.adam_done, self.adam)
        return reported, stop

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
        cadence = self.monitor.quasi_newton_every if self.monitor is not None else 0

        def closure():
            self.lbfgs.zero_grad(set_to_none=True)
            losses = self.losses()
            total = weighted_total(losses, self.weights)
            observe = bool(cadence) and self.quasi_newton_evaluations % cadence == 0
            # The step of the iteration this evaluation belongs to (within one).
            step = self.step + state.get("n_iter", 0) - before
            reported, _ = self._backward(losses, total, False, observe,
                                         self.config.quasi_newton, step)
            self.quasi_newton_evaluations += 1
            total = weighted_total(reported, self.weights)
            last.update(losses=reported, total=total)
            return total

        every = self.sampling.lbfgs_resample_every
        adaptive = self.sampling.adaptive == "rad"
        dense = isinstance(self.lbfgs, QuasiNewton)
        if self.lbfgs_done == 0 and adaptive and not self.lbfgs.state:
            self._draw_batch(adaptive=True)  # L-BFGS keeps one batch: make it the best one
        elif every and self.lbfgs_done and self.lbfgs_done % every == 0 and self.lbfgs.state:
            self._draw_batch(adaptive=adaptive)
            if dense:
                self.lbfgs.objective_changed()  # H carries over to the new points
            else:
                self.lbfgs.state.clear()  # L-BFGS's curvature pairs belong to the old points
        group = self.lbfgs.param_groups[0]
        group["max_iter"] = iterations
        if not dense:
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
        if not math.isfinite(float(last["total"])):  # L-BFGS syncs every iteration anyway
            self._bad_step.fill_(self.step)
            self._bad_losses.copy_(torch.tensor([self.last_losses[t] for t in self.terms]))
            self.raise_if_nonfinite()
        if done >= iterations:
            return None
        if dense:
            reason = self.lbfgs.stop_reason
            self.lbfgs_stop = reason and f"{reason} at iteration {self.lbfgs_done}"
        else:
            self.lbfgs_stop = lbfgs_stop_reason(self.lbfgs, self.parameters, float(last["total"]),
                                                done, self.lbfgs_done)
        return self.lbfgs_stop

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "step": self.step, "adam_done": self.adam_done, "lbfgs_done": self.lbfgs_done,
            "lbfgs_stop": self.lbfgs_stop, "last_losses": dict(self.last_losses),
            "quasi_newton_evaluations": self.quasi_newton_evaluations,
            "model": self.model.state_dict(),
            "extra_parameters": [p.detach().clone() for p in
                                 self.parameters[len(list(self.model.parameters())):]],
            "adam": self.adam.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule is not None else None,
            "lbfgs": self.lbfgs.state_dict(), "generator": self.generator.get_state(),
            "batch": {t: p.clone() for t, p in self._batch64.items()},
            "balancer": self.balancer.state_dict() if self.balancer is not None else None,
            "attention": self.attention.state_dict() if self.attention is not None else None,
        }
        if self.monitor is not None:
            state["monitor"] = self.monitor.state_dict()
        if self.sketched_data is not None:
            state["sketched_data"] = self.sketched_data.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step, self.adam_done = state["step"], state["adam_done"]
        self._step_t.fill_(self.step)
        self.lbfgs_done, self.lbfgs_stop = state["lbfgs_done"], state["lbfgs_stop"]
        self.quasi_newton_evaluations = state["quasi_newton_evaluations"]
        self.last_losses = dict(state["last_losses"])
        self.model.load_state_dict(state["model"])
        n_model = len(list(self.model.parameters()))
        with torch.no_grad():
            for p, saved in zip(self.parameters[n_model:], state["extra_parameters"]):
                p.copy_(saved)
        self.adam.load_state_dict(state["adam"])
        if self.schedule is not None:
            self.schedule.load_state_dict(state["schedule"])
        if self.lbfgs_done:  # else it never stepped: a run may add that phase on resume
            self.lbfgs.load_state_dict(state["lbfgs"])
        if self.balancer is not None:
            self.balancer.load_state_dict(state["balancer"])
        self.generator.set_state(state["generator"])
        self._batch64 = {t: p.clone() for t, p in state["batch"].items()}
        self._cast_batch()
        if self.attention is not None:
            self.attention.load_state_dict(state["attention"])
        if self.monitor is not None:
            self.monitor.load_state_dict(state["monitor"])
        if self.sketched_data is not None:
            self.sketched_data.load_state_dict(state["sketched_data"])
