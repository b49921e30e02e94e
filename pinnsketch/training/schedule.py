"""The schedule: Adam steps then L-BFGS chunks around a :class:`Trainer`, the evaluation
cadence, Ctrl-C between steps, and why each phase stopped (never a silent early exit).

The schedule does no I/O: it calls ``evaluate(phase, losses)`` at every evaluation point (step
0, every ``eval_every`` steps, the end of each phase, a stop) and the caller records, logs and
checkpoints there.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping

from pinnsketch.config import SamplingConfig, TrainConfig
from pinnsketch.training.curriculum import Curriculum
from pinnsketch.training.interrupt import GracefulInterrupt
from pinnsketch.training.trainer import Trainer

__all__ = ["Schedule"]

Evaluate = Callable[[str, Mapping[str, float]], None]


class Schedule:
    """Adam for ``train.adam_steps`` steps, then ``train.quasi_newton`` (L-BFGS unless set)
    for ``train.lbfgs_steps`` iterations; both phase names appear in metrics and summary.

    Attributes:
        train_s: seconds spent in optimiser steps (evaluation and I/O excluded).
        stopped_between_steps: a stop was asked for and honoured after a complete step.
        stop_gradient: max |∇L| when the phase after Adam stopped before its budget (the
            evidence of a line-search stall: a stop while the gradient is not small), else None.
    """

    def __init__(self, train: TrainConfig, sampling: SamplingConfig, trainer: Trainer):
        self.train, self.sampling, self.trainer = train, sampling, trainer
        self.train_s = 0.0
        self.stopped_between_steps = False
        self.stop_gradient: float | None = None
        ramp = train.curriculum
        self.curriculum = (Curriculum(trainer.problem, ramp.option, ramp.start, ramp.steps)
                           if ramp.option else None)

    @property
    def total_steps(self) -> int:
        return self.train.adam_steps + self.train.lbfgs_steps

    def finished(self) -> bool:
        """Every phase has run its budget (or L-BFGS stopped on a tolerance)."""
        trainer, cfg = self.trainer, self.train
        return (trainer.adam_done >= cfg.adam_steps
                and (trainer.lbfgs_done >= cfg.lbfgs_steps or trainer.lbfgs_stop is not None))

    def run(self, interrupt: GracefulInterrupt, evaluate: Evaluate,
            progress: Callable[[int], None]) -> None:
        """Train to the end of the schedule.

        Args:
            interrupt: its ``requested`` flag stops the run after the current step (Adam) or
                chunk (L-BFGS), with a final evaluation; then ``KeyboardInterrupt`` is raised.
            evaluate: called at every evaluation point with the phase and the losses.
            progress: called with the number of steps just taken.

        Raises:
            NonFiniteLoss: at the first evaluation after a NaN/inf loss (nothing recorded).
            KeyboardInterrupt: after a requested stop.
        """
        trainer, cfg = self.trainer, self.train
        second = cfg.quasi_newton
        if trainer.step == 0:
            evaluate("adam" if cfg.adam_steps else second, trainer.evaluate_losses())
        try:
            self._adam_phase(interrupt, evaluate, progress)
        finally:
            if self.curriculum is not None:
                self.curriculum.finish()  # the target for what follows, whatever happened
        while trainer.lbfgs_done < cfg.lbfgs_steps and trainer.lbfgs_stop is None:
            chunk = min(cfg.eval_every - trainer.step % cfg.eval_every,
                        cfg.lbfgs_steps - trainer.lbfgs_done)
            every = self.sampling.lbfgs_resample_every
            if every:  # end chunks where the points are redrawn
                chunk = min(chunk, every - trainer.lbfgs_done % every)
            before = trainer.step
            tic = time.perf_counter()
            reason = trainer.lbfgs_chunk(chunk)
            self.train_s += time.perf_counter() - tic
            if reason is not None:
                grads = [p.grad.abs().max() for p in trainer.parameters if p.grad is not None]
                self.stop_gradient = float(max(grads)) if grads else None
            progress(trainer.step - before)
            stop = trainer.agree_to_stop(interrupt.requested)
            if (trainer.step % cfg.eval_every == 0 or reason is not None
                    or trainer.lbfgs_done >= cfg.lbfgs_steps or stop):
                evaluate(second, trainer.last_losses)
            if stop:
                self.stopped_between_steps = True
                raise KeyboardInterrupt

    def _adam_phase(self, interrupt: GracefulInterrupt, evaluate: Evaluate,
                    progress: Callable[[int], None]) -> None:
        trainer, cfg = self.trainer, self.train
        while trainer.adam_done < cfg.adam_steps:
            if self.curriculum is not None:
                self.curriculum.apply(trainer.adam_done)
            tic = time.perf_counter()
            losses, stop = trainer.adam_step(stop=interrupt.requested)
            self.train_s += time.perf_counter() - tic
            # In one process a Ctrl-C during this step stops right after it; distributed,
            # the request travels with the next step's all-reduce so all ranks stop together.
            stop = stop or (trainer.distributed is None and interrupt.requested)
            progress(1)
            done = trainer.adam_done == cfg.adam_steps
            if trainer.step % cfg.eval_every == 0 or done or stop:
                trainer.raise_if_nonfinite()
                if trainer.causal is not None or trainer.attention is not None:
                    # The step's losses are reweighted; the record keeps the plain ones.
                    evaluate("adam", trainer.evaluate_losses())
                else:
                    evaluate("adam", {t: float(v) for t, v in losses.items()})
            if stop:
                self.stopped_between_steps = True
                raise KeyboardInterrupt

    def stop_reasons(self, status: str) -> dict[str, str]:
        """Why each optimiser phase ended, in words."""
        trainer, cfg = self.trainer, self.train
        reasons = {}
        for phase, done, budget in (("adam", trainer.adam_done, cfg.adam_steps),
                                    (cfg.quasi_newton, trainer.lbfgs_done, cfg.lbfgs_steps)):
            if phase != "adam" and trainer.lbfgs_stop is not None:
                reasons[phase] = trainer.lbfgs_stop
            elif budget and done >= budget:
                reasons[phase] = f"iterations reached ({budget})"
            elif budget:
                reasons[phase] = f"{status} after {done} of {budget} iterations"
        return reasons
