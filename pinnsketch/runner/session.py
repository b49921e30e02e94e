"""``train``: one training session, from a configuration to a finished run folder.

Everything is checked before anything is written: the configuration, the problem and the
shapes of what it returns, the folder. Then the schedule runs, evaluating every
``eval_every`` steps into ``metrics.jsonl`` and checkpointing atomically. Whatever happens,
the folder keeps the metrics so far, the last good checkpoint and a summary saying how the
run ended. Resuming a run that has already finished changes nothing in its folder.
"""
from __future__ import annotations

import datetime
import logging
import platform
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import scipy
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from pinnsketch.config import RunConfig, config_from_dict, load_config
from pinnsketch.errors import ConfigError, NonFiniteLoss, RunInterrupted
from pinnsketch.monitor.spectrum import band_energies, band_shares
from pinnsketch.problems import Problem, problem_source
from pinnsketch.runner.diagnosis import write_report
from pinnsketch.runner.figures import write_run_figures
from pinnsketch.runner.resume import check_folder
from pinnsketch.runner.run import Run
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.runner.windows import train_windows
from pinnsketch.training.build import build_trainer, resolve_device
from pinnsketch.training.checks import build_problem, check_config, check_problem_outputs
from pinnsketch.training.curvature import hessian_top
from pinnsketch.training.distributed import DistributedContext, init_from_environment
from pinnsketch.training.evaluation import (evaluation_points, last_hidden_features,
                                            pde_residual_values, predict, reference_errors,
                                            residual_by_time)
from pinnsketch.training.interrupt import GracefulInterrupt
from pinnsketch.training.schedule import Schedule
from pinnsketch.training.trainer import Trainer
from pinnsketch.version import __version__

__all__ = ["NO_REFERENCE", "as_config", "train"]

log = logging.getLogger(__name__)

NO_REFERENCE = "no reference solution: the relative L2 error is not measured"
# The regular grid of the residual spectrum, per input dimension (about 4k points in 2-D).
SPECTRUM_GRID = {1: (256,), 2: (64, 64), 3: (24, 24, 24)}


def as_config(source: RunConfig | Mapping[str, Any] | str | Path, *,
              require_type: bool = True) -> RunConfig:
    """A :class:`RunConfig` from itself, a mapping of sections, or a YAML path
    (``require_type=False``: the file may omit ``problem.type``, a problem object is given)."""
    if isinstance(source, RunConfig):
        return source
    if isinstance(source, Mapping):
        return config_from_dict(source)
    if isinstance(source, (str, Path)):
        return load_config(source, require_type=require_type)
    raise ConfigError(f"config: got a {type(source).__name__}, expected a RunConfig, a "
                      f"mapping of sections or a YAML path")


def train(config: RunConfig | Mapping[str, Any] | str | Path, *, problem: Problem | None = None,
          out: str | Path | None = None, resume: str | Path | None = None) -> Run:
    """Train the PINN ``config`` describes and write its run folder.

    Args:
        config: a :class:`RunConfig` (:func:`pinnsketch.load_config`), a mapping of sections
            as in YAML, or a YAML path.
        problem: a :class:`Problem` object replacing the config's ``problem`` section
            (whose ``type`` may then be omitted).
        out: run folder; default ``output.dir`` or ``runs/<problem>-<timestamp>``. It must
            not already hold a run (continue one with ``resume``).
        resume: a run folder to continue from its last checkpoint; ``config`` must equal the
            saved one except for ``train.adam_steps`` and ``train.lbfgs_steps``. A run that
            has already run its schedule is left untouched and returned as it is.

    Returns:
        The finished :class:`Run` (``summary`` is empty on non-zero distributed ranks).

    Raises:
        ConfigError: on invalid input, before anything is written.
        NonFiniteLoss: a loss became NaN/inf (metrics and the last good checkpoint are kept).
        RunInterrupted: after Ctrl-C (a ``KeyboardInterrupt``), saying what was saved.
    """
    config = as_config(config, require_type=problem is None)
    if config.train.time_marching.networks == "per_window":
        check_config(config, problem)
        full = build_problem(config, problem)
        return train_windows(config, full, _folder(config, full, out, resume), resume,
                             train_one=train)
    distributed = init_from_environment(config.train.distributed_backend,
                                        resolve_device(config.train.device))
    trainer = build_trainer(config, distributed, problem=problem)
    check_problem_outputs(trainer.problem, trainer.model, trainer.batch)
    folder = _folder(config, trainer.problem, out, resume)
    _agree(distributed, lambda: check_folder(folder, config, resume))
    session = _Session(config, trainer, folder)
    if resume is not None:
        _agree(distributed, lambda: session.restore(resume))
        if session.schedule.finished():
            log.info("%s: already finished at step %d; its results are unchanged (raise "
                     "train.adam_steps or train.lbfgs_steps to continue it)",
                     folder.path, trainer.step)
            _leave(distributed)
            return session.result()
    return session.run(fresh=resume is None)


def _agree(distributed: DistributedContext | None, check: Callable[[], None]) -> None:
    """Run ``check``; distributed, every rank raises if any rank's check failed, so none
    waits in a collective for a rank that has left."""
    message = None
    try:
        check()
    except ConfigError as err:
        message = str(err)
    if distributed is not None:
        found = [m for m in distributed.gather_objects(message) if m]
        message = found[0] if found else None
    if message:
        raise ConfigError(message)


def _leave(distributed: DistributedContext | None) -> None:
    if distributed is not None:
        # Leave together: a rank that destroys the group while rank 0 still writes the
        # summary and report can abort in gloo's teardown (seen under CI load).
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def _folder(config: RunConfig, problem: Problem, out: str | Path | None,
            resume: str | Path | None) -> RunDir:
    """The run folder: the one resumed, else ``out``, ``output.dir`` or
    ``runs/<problem>-<timestamp>``."""
    if resume is not None or out is not None or config.output.dir:
        return RunDir(resume if resume is not None else out or config.output.dir)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = config.problem.type or type(problem).__name__.lower()
    return RunDir(Path("runs") / f"{name.replace(':', '-').replace('.', '-')}-{stamp}")


def _versions() -> dict[str, str]:
    return {"pinnsketch": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__}


def _check_extension(config: RunConfig, trainer: Trainer) -> None:
    """A resumed schedule continues the phase it is in: Adam's budget cannot shrink below the
    steps taken, nor grow once the phase after it has begun (Adam would run again after it)."""
    done, budget = trainer.adam_done, config.train.adam_steps
    if budget < done or (trainer.lbfgs_done and budget != done):
        later = (f" and {trainer.lbfgs_done} {config.train.quasi_newton} iterations"
                 if trainer.lbfgs_done else "")
        raise ConfigError(
            f"train.adam_steps: got {budget}, but the run to resume has taken {done} Adam "
            f"steps{later}; keep train.adam_steps={done} and extend the last phase with "
            f"train.lbfgs_steps")


class _Session:
    """The schedule of one trainer, recorded into one folder: evaluations, checkpoints,
    summary, figures and the monitor's report."""

    def __init__(self, config: RunConfig, trainer: Trainer, folder: RunDir):
        self.config, self.trainer, self.folder = config, trainer, folder
        self.problem = trainer.problem
        self.schedule = Schedule(config.train, config.sampling, trainer)
        self.distributed = trainer.distributed
        self.main = self.distributed is None or self.distributed.is_main
        self.name = config.problem.type or type(self.problem).__name__
        self.elapsed_before = 0.0
        self.started = 0.0  # set when the schedule starts (run)
        self.last_checkpoint = trainer.step
        self.errors: dict[str, Any] = {"rel_l2": None}  # and rel_l2_outputs for a system
        self.grid = self.reference = None
        self.bar: tqdm | None = None

    def restore(self, resume: str | Path) -> None:
        """Load the folder's checkpoint into the trainer (this rank's sampler state)."""
        checkpoint = self.folder.load_checkpoint(map_location=self.trainer.device)
        state = checkpoint["trainer"]
        saved_world = len(checkpoint["ranks"]) if checkpoint.get("ranks") else 1
        world = self.distributed.world_size if self.distributed is not None else 1
        if saved_world != world:
            raise ConfigError(f"--resume {resume}: the run used {saved_world} process(es), "
                              f"this launch has {world}; resume with the same number")
        if self.distributed is not None:
            state = {**state, **checkpoint["ranks"][self.distributed.rank]}
        self.trainer.load_state_dict(state)
        _check_extension(self.config, self.trainer)
        self.elapsed_before = checkpoint["elapsed_s"]
        self.schedule.train_s = checkpoint["train_s"]
        self.last_checkpoint = self.trainer.step

    def result(self) -> Run:
        summary = self.folder.read_summary() if self.main else {}
        return Run(self.folder.path, self.config, self.problem, self.trainer.model, summary)

    def wall(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    # -- the run ----------------------------------------------------------------------------
    def run(self, *, fresh: bool) -> Run:
        trainer, folder = self.trainer, self.folder
        if self.main:
            if not fresh:
                folder.truncate_metrics(trainer.step)
            folder.create(self.config, problem_source(self.problem))
            grid, _, inside = evaluation_points(self.problem)
            self.grid = grid[inside]
            if self.problem.has_reference:
                self.reference = self.problem.reference(self.grid)
        self.started = time.perf_counter()
        if fresh:  # a run killed before its first periodic checkpoint still resumes
            self.checkpoint()
        show = self.config.output.progress and self.main
        self.bar = tqdm(total=self.schedule.total_steps, initial=trainer.step, disable=not show,
                        desc=self.config.output.label or self.name, dynamic_ncols=True)
        status = "failed"
        interrupt = GracefulInterrupt()
        try:
            with logging_redirect_tqdm(), interrupt, self.bar:
                self.schedule.run(interrupt, self.evaluate, self.bar.update)
            status = "completed"
        except NonFiniteLoss:
            status = "diverged"
            raise
        except KeyboardInterrupt as err:
            status = "interrupted"
            # A second Ctrl-C lands mid-step: then the last periodic checkpoint stands.
            saved = self.schedule.stopped_between_steps
            if saved:
                self.checkpoint()
            raise RunInterrupted(folder.path, saved, trainer.step) from err
        finally:
            if status == "completed":
                self.checkpoint()
            if self.main:
                self.finish(status)
            if status == "completed":
                _leave(self.distributed)
        return self.result()

    def evaluate(self, phase: str, losses: Mapping[str, float]) -> None:
        """Record one evaluation (rank 0) and checkpoint when one is due (all ranks)."""
        trainer = self.trainer
        trainer.last_losses = dict(losses)
        curvature = self._curvature()  # a collective when distributed: every rank takes it
        if self.main:  # the model is identical on every rank: one evaluates and writes
            if self.reference is not None:
                self.errors = reference_errors(self.problem, predict(trainer.model, self.grid),
                                               self.reference)
            self.folder.append_metrics({
                "step": trainer.step, "phase": phase, "loss": dict(losses),
                "loss_total": sum(trainer.weights[t] * v for t, v in losses.items()),
                **self.errors, "lr": trainer.adam.param_groups[0]["lr"],
                "wall_s": self.wall(), **self.problem.metrics(), **trainer.metrics(),
                **self._profile(), **curvature, **self._residual_spectrum()})
            postfix = {t: f"{v:.2e}" for t, v in losses.items()}
            if self.errors["rel_l2"] is not None:
                postfix["rel_l2"] = f"{self.errors['rel_l2']:.2e}"
            self.bar.set_postfix(postfix, refresh=False)
        if trainer.step - self.last_checkpoint >= self.config.train.checkpoint_every:
            self.checkpoint()

    def _curvature(self) -> dict[str, dict[str, list[float]]]:
        """The top Hessian eigenvalues per term (``monitor.curvature_steps`` > 0)."""
        monitor, trainer = self.config.monitor, self.trainer
        if not (monitor.enabled and monitor.curvature_steps):
            return {}
        average = trainer.distributed.average_ if trainer.distributed is not None else None
        return {"hessian_top": hessian_top(trainer.losses(), trainer.parameters,
                                           steps=monitor.curvature_steps,
                                           top=monitor.curvature_top, seed=trainer.step,
                                           average=average)}

    def _residual_spectrum(self) -> dict[str, Any]:
        """Shares of the pde residual's energy, and of the last hidden features' (each
        feature's mean removed), on a regular grid in five octave bands of wavenumber
        (monitored runs): the spectral-bias evidence."""
        if not self.config.monitor.enabled:
            return {}
        domain, model = self.problem.domain, self.trainer.model
        counts = SPECTRUM_GRID[domain.dim]
        grid = domain.grid(counts).numpy()
        record = {"spectrum_grid": list(counts)}
        for key, values in (("residual_bands", pde_residual_values(self.problem, model, grid)),
                            ("feature_bands", last_hidden_features(model, grid))):
            fields = values.reshape(*counts, -1)  # one field per component or feature
            if key == "feature_bands":
                fields = fields - fields.mean(axis=tuple(range(len(counts))))
            record[key] = band_shares(sum(band_energies(fields[..., c])
                                          for c in range(fields.shape[-1])))
        return record

    def _profile(self) -> dict[str, list[float]]:
        """The pde residual over time slabs of the current points (evolution problems)."""
        trainer, time = self.trainer, self.problem.domain.time
        if time is None or "pde" not in trainer.batch:
            return {}
        return {"pde_by_time": residual_by_time(self.problem, trainer.model,
                                                trainer.batch["pde"], time)}

    def checkpoint(self) -> None:
        """Save the trainer state; distributed, with every rank's generator and batch
        (a collective: every rank calls it at the same step, rank 0 writes)."""
        state = self.trainer.state_dict()
        ranks = None
        if self.distributed is not None:
            ranks = self.distributed.gather_objects(
                {"generator": state["generator"], "batch": state["batch"]})
        if self.main:
            self.folder.save_checkpoint({"trainer": state, "ranks": ranks,
                                         "elapsed_s": self.wall(),
                                         "train_s": self.schedule.train_s})
        self.last_checkpoint = self.trainer.step

    # -- the end ----------------------------------------------------------------------------
    def summary(self, status: str) -> dict[str, Any]:
        trainer, steps = self.trainer, self.trainer.step
        train_s = self.schedule.train_s
        note = {} if self.problem.has_reference else {"rel_l2_note": NO_REFERENCE}
        return {
            "status": status, "problem": self.name, **self.errors, **note,
            **self.problem.metrics(), "steps": steps, "adam_steps": trainer.adam_done,
            "lbfgs_steps": trainer.lbfgs_done,
            "stop_reasons": self.schedule.stop_reasons(status),
            "stop_gradient": self.schedule.stop_gradient,
            "final_losses": trainer.last_losses, "wall_s": self.wall(), "train_s": train_s,
            "s_per_step": train_s / steps if steps else None, "seed": self.config.train.seed,
            "dtype": self.config.train.dtype, "device": str(trainer.device),
            "torch_threads": torch.get_num_threads(),
            "parameters": sum(p.numel() for p in trainer.parameters), "versions": _versions(),
        }

    def finish(self, status: str) -> None:
        """Summary always; figures and the monitor's report when the run got that far."""
        self.folder.write_summary(self.summary(status))
        metrics = self.folder.read_metrics()
        if status == "completed" and self.config.output.plots:
            write_run_figures(self.folder, self.problem, self.trainer.model, metrics,
                              name=self.name)
        if self.trainer.monitor is not None and status != "failed":
            write_report(self.folder.path, self.trainer.monitor, metrics)
