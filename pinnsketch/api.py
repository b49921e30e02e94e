"""User-facing entry points: load a problem, train a run, load a finished run.

``train(config)`` validates everything before it writes anything, then runs Adam and
L-BFGS, evaluating every ``eval_every`` steps into ``metrics.jsonl`` and checkpointing
atomically. Ctrl-C finishes the current step (or L-BFGS chunk), saves a checkpoint and
raises ``KeyboardInterrupt``; a non-finite loss raises :class:`NonFiniteLoss` and keeps the
last good checkpoint.
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import platform
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import torch
from tqdm import tqdm

import pinnsketch
from pinnsketch.config import ConfigError, RunConfig, load_config
from pinnsketch.distributed import DistributedContext, init_from_environment
from pinnsketch.model import ACTIVATIONS, INITIALIZERS, MLP, PINN
from pinnsketch.problems import make_observations, resolve_problem_class
from pinnsketch.problems.base import Problem
from pinnsketch.runs import RunDir
from pinnsketch.trainer import NonFiniteLoss, Trainer

__all__ = ["Run", "build_model", "build_trainer", "load_problem", "load_run", "train"]

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float64": torch.float64}
EVAL_CHUNK = 65536  # grid points per forward pass at evaluation


def load_problem(path_or_config: str | Path | RunConfig) -> Problem:
    """The problem described by a YAML file or a :class:`RunConfig`."""
    config = path_or_config if isinstance(path_or_config, RunConfig) else load_config(path_or_config)
    return resolve_problem_class(config.problem.type)(config.problem.options)


def build_model(config: RunConfig, problem: Problem) -> PINN:
    """The network of ``config.model`` for ``problem`` (float32 on the CPU; cast by caller)."""
    model_cfg = config.model
    if model_cfg.hard_constraints and not problem.has_output_transform:
        raise ConfigError(f"model.hard_constraints: problem {config.problem.type!r} defines "
                          f"no output transform (set it to false)")
    generator = torch.Generator().manual_seed(config.train.seed)
    mlp = MLP(problem.domain.dim, 1, model_cfg.width, model_cfg.depth,
              activation=ACTIVATIONS[model_cfg.activation],
              init=INITIALIZERS[model_cfg.init], generator=generator)
    domain = problem.domain
    return PINN(mlp,
                lows=domain.lows if model_cfg.normalize_inputs else None,
                highs=domain.highs if model_cfg.normalize_inputs else None,
                output_transform=problem.output_transform if model_cfg.hard_constraints else None)


def predict(model: torch.nn.Module, points: np.ndarray) -> np.ndarray:
    """Model values ``(N,)`` (float64 numpy) at ``points`` ``(N, d)``, in chunks."""
    param = next(model.parameters())
    out = []
    with torch.no_grad():
        for start in range(0, len(points), EVAL_CHUNK):
            chunk = torch.as_tensor(points[start:start + EVAL_CHUNK], dtype=param.dtype,
                                    device=param.device)
            out.append(model(chunk).to(torch.float64).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def relative_l2(prediction: np.ndarray, reference: np.ndarray) -> float:
    """‖prediction − reference‖₂ / ‖reference‖₂."""
    return float(np.linalg.norm(prediction - reference) / np.linalg.norm(reference))


@dataclasses.dataclass
class Run:
    """A trained (or loaded) run: its config, problem, model and files."""

    path: Path
    config: RunConfig
    problem: Problem
    model: PINN
    summary: dict[str, Any]

    def predict(self, points: np.ndarray) -> np.ndarray:
        """u_θ at ``points`` ``(N, d)``, columns as in ``problem.input_names``; ``(N,)``."""
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != len(self.problem.input_names):
            raise ValueError(f"points must have shape (N, {len(self.problem.input_names)}) "
                             f"with columns {self.problem.input_names}, got {points.shape}")
        return predict(self.model, points)

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return RunDir(self.path).read_metrics()


def load_run(run_dir: str | Path) -> Run:
    """Reload a run folder written by :func:`train` (on the CPU)."""
    folder = RunDir(run_dir)
    if not folder.config_path.exists() or not folder.checkpoint_path.exists():
        raise ConfigError(f"{run_dir}: not a run folder (needs config.yaml and checkpoint.pt)")
    config = load_config(folder.config_path)
    problem = load_problem(config)
    model = build_model(config, problem).to(DTYPES[config.train.dtype])
    state = folder.load_checkpoint()["trainer"]
    model.load_state_dict(state["model"])
    with torch.no_grad():
        for coefficient, saved in zip(problem.parameters(), state["extra_parameters"]):
            coefficient.data = saved.to(coefficient.dtype)
    return Run(folder.path, config, problem, model, folder.read_summary())


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------
def _resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: got 'cuda' but torch.cuda.is_available() is False "
                          "(allowed here: cpu)")
    if name == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))  # one GPU per rank
    return torch.device(name)


def _terms(config: RunConfig, problem: Problem) -> tuple[str, ...]:
    terms = problem.physics_terms(config.model.hard_constraints)
    if config.problem.observations.count > 0:
        terms += ("data",)
    for term, how in config.terms.items():
        if how.gradient == "sketched" and term != "data":
            raise ConfigError(f"terms.{term}.gradient: got 'sketched', but only the data term "
                              f"can be sketched (residual terms need exact higher derivatives)")
    if problem.parameters() and config.problem.observations.count == 0:
        raise ConfigError(f"problem.observations.count: got 0, but {config.problem.type!r} "
                          f"identifies unknown coefficients and needs data (e.g. 2000)")
    for key, section in (("train.weights", config.train.weights), ("terms", config.terms),
                         ("monitor.terms", config.monitor.terms)):
        for term in section:
            if term not in terms:
                raise ConfigError(f"{key}.{term}: unknown loss term "
                                  f"(terms of this run: {', '.join(terms)})")
    return terms


def _default_out(config: RunConfig) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = config.problem.type.replace(":", "-").replace(".", "-")
    return Path("runs") / f"{name}-{stamp}"


def _versions() -> dict[str, str]:
    return {"pinnsketch": pinnsketch.__version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__}


class _GracefulInterrupt:
    """First Ctrl-C sets a flag checked between steps; a second one interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)
        log.warning("interrupt: finishing the current step (or L-BFGS chunk), then saving a "
                    "checkpoint; press Ctrl-C again to stop at once")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class _Loop:
    """Runs the schedule around a :class:`Trainer`: evaluation, metrics, checkpoints."""

    def __init__(self, config: RunConfig, trainer: Trainer, folder: RunDir,
                 grid: np.ndarray, reference: np.ndarray, elapsed: float):
        self.config, self.trainer, self.folder = config, trainer, folder
        self.grid, self.reference = grid, reference
        self.elapsed_before = elapsed
        self.started = time.perf_counter()
        self.train_s = 0.0
        self.last_checkpoint = trainer.step
        self.rel_l2 = float("nan")
        self.stopped_between_steps = False
        self.distributed = trainer.distributed
        self.is_main = self.distributed is None or self.distributed.is_main

    def wall(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.started

    def evaluate(self, phase: str, losses: dict[str, float], bar: tqdm) -> None:
        trainer = self.trainer
        trainer.last_losses = losses
        if self.is_main:  # the model is identical on every rank: one evaluates and writes
            self.rel_l2 = relative_l2(predict(trainer.model, self.grid), self.reference)
            record = {"step": trainer.step, "phase": phase, "loss": losses,
                      "loss_total": sum(trainer.weights[t] * v for t, v in losses.items()),
                      "rel_l2": self.rel_l2, "lr": trainer.adam.param_groups[0]["lr"],
                      "wall_s": self.wall(), **trainer.problem.metrics()}
            self.folder.append_metrics(record)
            bar.set_postfix({**{t: f"{v:.2e}" for t, v in losses.items()},
                             "rel_l2": f"{self.rel_l2:.2e}"}, refresh=False)
        if trainer.step - self.last_checkpoint >= self.config.train.checkpoint_every:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Save the trainer state; distributed, with every rank's generator and batch
        (collective: all ranks call it at the same step, rank 0 writes)."""
        state = self.trainer.state_dict()
        ranks = None
        if self.distributed is not None:
            ranks = self.distributed.gather_objects(
                {"generator": state["generator"], "batch": state["batch"]})
        if self.is_main:
            self.folder.save_checkpoint({"trainer": state, "ranks": ranks,
                                         "elapsed_s": self.wall(), "train_s": self.train_s})
        self.last_checkpoint = self.trainer.step

    def stop_requested(self, interrupt: _GracefulInterrupt) -> bool:
        """Ctrl-C reaches ranks at different steps; distributed, all stop if any asked."""
        if self.distributed is None:
            return interrupt.requested
        flag = torch.tensor([float(interrupt.requested)])
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def run(self, interrupt: _GracefulInterrupt, bar: tqdm) -> None:
        trainer, cfg = self.trainer, self.config.train
        while trainer.adam_done < cfg.adam_steps:
            tic = time.perf_counter()
            losses = trainer.adam_step()
            self.train_s += time.perf_counter() - tic
            bar.update(1)
            done = trainer.adam_done == cfg.adam_steps
            stop = self.stop_requested(interrupt)
            if trainer.step % cfg.eval_every == 0 or done or stop:
                self.evaluate("adam", {t: float(v) for t, v in losses.items()}, bar)
            if stop:
                self.stopped_between_steps = True
                raise KeyboardInterrupt
        while trainer.lbfgs_done < cfg.lbfgs_steps and trainer.lbfgs_stop is None:
            chunk = min(cfg.eval_every - trainer.step % cfg.eval_every,
                        cfg.lbfgs_steps - trainer.lbfgs_done)
            every = self.config.sampling.lbfgs_resample_every
            if every:  # end chunks where the points are redrawn
                chunk = min(chunk, every - trainer.lbfgs_done % every)
            before = trainer.step
            tic = time.perf_counter()
            reason = trainer.lbfgs_chunk(chunk)
            self.train_s += time.perf_counter() - tic
            bar.update(trainer.step - before)
            if reason is not None:
                log.info("L-BFGS stopped: %s", reason)
            stop = self.stop_requested(interrupt)
            if (trainer.step % cfg.eval_every == 0 or reason is not None
                    or trainer.lbfgs_done >= cfg.lbfgs_steps or stop):
                self.evaluate("lbfgs", trainer.last_losses, bar)
            if stop:
                self.stopped_between_steps = True
                raise KeyboardInterrupt

    def stop_reasons(self, status: str) -> dict[str, str]:
        """Why each optimiser phase ended, in words (never a silent early exit)."""
        trainer, cfg = self.trainer, self.config.train
        reasons = {}
        for phase, done, budget in (("adam", trainer.adam_done, cfg.adam_steps),
                                    ("lbfgs", trainer.lbfgs_done, cfg.lbfgs_steps)):
            if phase == "lbfgs" and trainer.lbfgs_stop is not None:
                reasons[phase] = trainer.lbfgs_stop
            elif budget and done >= budget:
                reasons[phase] = f"iterations reached ({budget})"
            elif budget:
                reasons[phase] = f"{status} after {done} of {budget} iterations"
        return reasons

    def summary(self, status: str) -> dict[str, Any]:
        trainer = self.trainer
        steps = trainer.step
        return {
            "status": status, "problem": self.config.problem.type,
            "rel_l2": self.rel_l2, **trainer.problem.metrics(),
            "steps": steps, "adam_steps": trainer.adam_done,
            "lbfgs_steps": trainer.lbfgs_done, "stop_reasons": self.stop_reasons(status),
            "final_losses": trainer.last_losses, "wall_s": self.wall(),
            "train_s": self.train_s, "s_per_step": self.train_s / steps if steps else None,
            "seed": self.config.train.seed, "dtype": self.config.train.dtype,
            "device": str(trainer.device), "torch_threads": torch.get_num_threads(),
            "parameters": sum(p.numel() for p in trainer.parameters),
            "versions": _versions(),
        }


def build_trainer(config: RunConfig, distributed: DistributedContext | None = None) -> Trainer:
    """Problem, network, data, monitor and optimisers of ``config``, ready to train.

    The same seed gives the same network, observations and collocation points. Writes
    nothing; raises :class:`ConfigError` on any inconsistency between sections. With
    ``distributed``, this rank gets its shard of the observations and its own points.
    """
    device = _resolve_device(config.train.device)
    dtype = DTYPES[config.train.dtype]
    problem = load_problem(config)
    terms = _terms(config, problem)
    model = build_model(config, problem).to(device=device, dtype=dtype)
    for coefficient in problem.parameters():
        coefficient.data = coefficient.data.to(device=device, dtype=dtype)
    observations = None
    if config.problem.observations.count:
        data_generator = torch.Generator().manual_seed(config.train.seed + 1_000_003)
        observations = make_observations(problem, config.problem.observations, data_generator)
        if distributed is not None:
            if len(observations) % distributed.world_size:
                raise ConfigError(
                    f"problem.observations.count: got {len(observations)}, must be divisible "
                    f"by the {distributed.world_size} ranks (equal shards keep the mean exact)")
            observations = observations[distributed.rank::distributed.world_size]
    monitor = None
    if config.monitor.enabled:
        from pinnsketch.sketch.monitor import build_monitor

        n_layers = len(model.linear_layers)
        bad = [i for i in config.monitor.layers if not 0 <= i < n_layers]
        if bad:
            raise ConfigError(f"monitor.layers: got {bad}, layer indices must be in "
                              f"[0, {n_layers - 1}] for this network")
        monitor = build_monitor(config.monitor, model, terms, seed=config.train.seed)
    sketched_data = None
    data_gradient = config.terms.get("data")
    if data_gradient is not None and data_gradient.gradient == "sketched":
        from pinnsketch.sketch.sketched_grad import SketchedGradient

        if distributed is not None:
            raise ConfigError("terms.data.gradient: 'sketched' is single-process only "
                              "(run without torchrun, or use 'exact')")
        sketched_data = SketchedGradient(
            model, rank=data_gradient.rank, variant=data_gradient.variant,
            generator=torch.Generator().manual_seed(config.train.seed + 2_000_003),
            n_rows=config.problem.observations.count)
    return Trainer(problem, model, train=config.train, sampling=config.sampling,
                   terms=terms, observations=observations, device=device, dtype=dtype,
                   monitor=monitor, extra_parameters=problem.parameters(),
                   sketched_data=sketched_data, distributed=distributed)


def train(config: RunConfig, *, out: str | Path | None = None,
          resume: str | Path | None = None) -> Run:
    """Train the PINN described by ``config`` and write its run folder.

    Args:
        config: a validated configuration (:func:`pinnsketch.load_config`).
        out: run folder; default ``config.output.dir`` or ``runs/<problem>-<timestamp>``.
            It must not already hold a run (use ``resume`` to continue one).
        resume: a run folder to continue from its last checkpoint; ``config`` must equal
            the saved one except for ``train.adam_steps``/``train.lbfgs_steps``.

    Returns:
        The finished :class:`Run`.

    Raises:
        ConfigError: on invalid input, before anything is written.
        NonFiniteLoss: a loss became NaN/inf (metrics and last good checkpoint kept).
        KeyboardInterrupt: after Ctrl-C, once a checkpoint of the last full step is saved.
    """
    # 1. Validate everything and build the pieces before touching the disk.
    distributed = init_from_environment(config.train.distributed_backend,
                                        _resolve_device(config.train.device))
    main = distributed is None or distributed.is_main
    trainer = build_trainer(config, distributed)
    problem = trainer.problem
    folder = RunDir(resume if resume is not None
                    else out or config.output.dir or _default_out(config))
    problem_found = None
    try:
        _check_folder(folder, config, resume)
    except ConfigError as err:
        problem_found = str(err)
    if distributed is not None:  # agree on failure, so no rank waits for one that left
        found = [m for m in distributed.gather_objects(problem_found) if m]
        problem_found = found[0] if found else None
    if problem_found:
        raise ConfigError(problem_found)
    grid, _ = problem.evaluation_grid()
    reference = problem.reference(grid) if main else None
    elapsed = 0.0
    if resume is not None:
        checkpoint = folder.load_checkpoint(map_location=trainer.device)
        state = checkpoint["trainer"]
        saved_world = len(checkpoint["ranks"]) if checkpoint.get("ranks") else 1
        world = distributed.world_size if distributed is not None else 1
        if saved_world != world:
            raise ConfigError(f"--resume {resume}: the run used {saved_world} process(es), "
                              f"this launch has {world}; resume with the same number")
        if distributed is not None:
            state = {**state, **checkpoint["ranks"][distributed.rank]}
        trainer.load_state_dict(state)
        elapsed = checkpoint["elapsed_s"]
        if main:
            folder.truncate_metrics(trainer.step)
    if main:
        folder.create(config)
    loop = _Loop(config, trainer, folder, grid, reference, elapsed)
    if resume is not None:
        loop.train_s = checkpoint["train_s"]
    total = config.train.adam_steps + config.train.lbfgs_steps
    bar = tqdm(total=total, initial=trainer.step, disable=not (config.output.progress and main),
               desc=config.problem.type, dynamic_ncols=True, leave=True)
    # 3. Run; whatever happens, leave metrics, the last good checkpoint and a summary.
    status = "failed"
    interrupt = _GracefulInterrupt()
    try:
        with interrupt, bar:
            loop.run(interrupt, bar)
        status = "completed"
    except NonFiniteLoss:
        status = "diverged"
        raise
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        # A second Ctrl-C may land mid-step: then the last periodic checkpoint stands.
        if status == "completed" or (status == "interrupted" and loop.stopped_between_steps):
            loop.checkpoint()
        if main:
            _finish_folder(folder, loop, status)
        if distributed is not None and status == "completed":
            torch.distributed.destroy_process_group()
    return Run(folder.path, config, problem, trainer.model, folder.read_summary() if main else {})


def _finish_folder(folder: RunDir, loop: _Loop, status: str) -> None:
    """Summary always; plots and the monitor's diagnosis when the run got that far."""
    folder.write_summary(loop.summary(status))
    trainer, config = loop.trainer, loop.config
    if status == "completed" and config.output.plots:
        from pinnsketch.plotting import plot_run

        plot_run(folder, trainer.problem, trainer.model)
    if trainer.monitor is not None and status != "failed":
        from pinnsketch.sketch.diagnosis import write_report

        write_report(folder.path, trainer.monitor, folder.read_metrics())


def _check_folder(folder: RunDir, config: RunConfig, resume) -> None:
    """The run folder can take this run: a new one is empty, a resumed one matches."""
    if resume is not None:
        if not folder.checkpoint_path.exists():
            raise ConfigError(f"--resume {resume}: no checkpoint.pt in that folder")
        _check_resume_config(load_config(folder.config_path), config)
    elif folder.holds_run():
        raise ConfigError(f"--out {folder.path}: already holds a run (choose another "
                          f"folder, or continue it with --resume {folder.path})")


def _check_resume_config(saved: RunConfig, given: RunConfig) -> None:
    """Only the step budgets may change when a run is continued."""
    budget = {"adam_steps", "lbfgs_steps"}
    saved_train = {k: v for k, v in dataclasses.asdict(saved.train).items() if k not in budget}
    given_train = {k: v for k, v in dataclasses.asdict(given.train).items() if k not in budget}
    for key in saved_train:
        if saved_train[key] != given_train[key]:
            raise ConfigError(f"train.{key}: got {given_train[key]!r} but the run to resume "
                              f"used {saved_train[key]!r}; only train.adam_steps and "
                              f"train.lbfgs_steps may change on resume")
    for section in ("problem", "model", "sampling", "monitor", "terms"):
        if getattr(saved, section) != getattr(given, section):
            raise ConfigError(f"{section}: differs from the run to resume; only "
                              f"train.adam_steps and train.lbfgs_steps may change on resume")

