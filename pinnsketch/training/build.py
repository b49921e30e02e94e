"""From a checked configuration to the objects that train: problem, network, data, monitor,
sketched gradients and the trainer.

Randomness: the run's one recorded seed spawns independent streams through
:class:`numpy.random.SeedSequence` (:func:`seed_streams`), one per consumer, so changing how
many numbers one consumer draws (more points, another monitor rank) moves no other.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from pinnsketch.config import DTYPES, MonitorConfig, RunConfig
from pinnsketch.errors import ConfigError
from pinnsketch.model import PINN, FourierFeatures
from pinnsketch.monitor import SketchMonitor
from pinnsketch.problems import Problem, make_observations
from pinnsketch.sketch.rank import RankController
from pinnsketch.sketch.sketched_grad import SketchedGradient
from pinnsketch.training.checks import build_problem, check_config, network, run_terms
from pinnsketch.training.distributed import DistributedContext
from pinnsketch.training.trainer import Trainer

__all__ = ["STREAMS", "build_model", "build_monitor", "build_trainer", "resolve_device",
           "seed_streams"]

# The consumers of randomness, each with its own stream (order fixed: it is the spawn key).
STREAMS = ("model", "sampler", "observations", "monitor", "sketched_gradient",
           "factorization")


def seed_streams(seed: int, rank: int = 0) -> dict[str, int]:
    """Independent 63-bit seeds for each of :data:`STREAMS`, spawned from ``seed``.

    ``sampler`` also depends on ``rank`` (each distributed rank draws its own points); the
    others are the same on every rank (one network, one data set, one monitor).
    """
    children = dict(zip(STREAMS, np.random.SeedSequence(seed).spawn(len(STREAMS))))
    children["sampler"] = children["sampler"].spawn(rank + 1)[rank]
    return {name: int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))
            for name, child in children.items()}


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda`` (under torchrun, ``cuda:LOCAL_RANK``: one GPU per rank)."""
    if name == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device(name)


def build_model(config: RunConfig, problem: Problem) -> PINN:
    """The network of ``config.model`` for ``problem`` (CPU, default dtype; cast by caller)."""
    model_cfg, seeds = config.model, seed_streams(config.train.seed)
    generator = torch.Generator().manual_seed(seeds["model"])
    periodic = {problem.input_names.index(name): period
                for name, period in model_cfg.periodic.items()}
    domain, fourier = problem.domain, model_cfg.fourier
    features = (FourierFeatures(domain.dim + len(periodic), fourier.features, fourier.scale,
                                generator) if fourier.features else None)
    scales = torch.Generator().manual_seed(seeds["factorization"])
    return PINN(network(config, problem, generator, scales),
                lows=domain.lows if model_cfg.normalize_inputs else None,
                highs=domain.highs if model_cfg.normalize_inputs else None,
                output_transform=problem.output_transform if model_cfg.hard_constraints else None,
                periodic=periodic, fourier=features, dim=domain.dim)


def build_monitor(config: MonitorConfig, model: torch.nn.Module, terms: Sequence[str], *,
                  seed: int) -> SketchMonitor:
    """The monitor of a ``monitor`` section over ``model``'s Linear layers.

    Args:
        config: the section (rank, beta, cadences, backend, terms, layers, history).
        model: the network; ``config.layers`` selects its Linear layers (empty: all).
        terms: the run's loss terms; ``config.terms`` selects among them (empty: all).
        seed: the monitor's stream; the sketches' test matrices are drawn from it.
    """
    chosen = tuple(config.terms) or tuple(terms)
    history = config.history + config.history % 2  # decimation halves an even row count
    return SketchMonitor.for_module(model, chosen, layers=config.layers, rank=config.rank,
                                    beta=config.beta, every=config.every,
                                    quasi_newton_every=config.quasi_newton_every,
                                    backend=config.backend, history=history, seed=seed,
                                    rank_tolerance=config.rank_tolerance,
                                    max_rank=config.max_rank or None,
                                    rank_patience=config.rank_patience)


def build_trainer(config: RunConfig, distributed: DistributedContext | None = None, *,
                  problem: Problem | None = None) -> Trainer:
    """Problem, network, data, monitor and optimisers of ``config``, ready to train.

    Runs :func:`check_config` first. The same seed gives the same network, observations and
    collocation points. Writes nothing. With ``distributed``, this rank gets its shard of the
    observations and its own points.

    Raises:
        ConfigError: on any inconsistency, before anything is built.
    """
    check_config(config, problem)
    problem = build_problem(config, problem)
    device = resolve_device(config.train.device)
    dtype = DTYPES[config.train.dtype]
    rank = distributed.rank if distributed is not None else 0
    seeds = seed_streams(config.train.seed, rank)
    terms = run_terms(config, problem)
    model = build_model(config, problem).to(device=device, dtype=dtype)
    for coefficient in problem.parameters():
        coefficient.data = coefficient.data.to(device=device, dtype=dtype)
    observations = None
    observed = config.problem.observations
    if observed.count:
        observations = make_observations(problem, observed.count, observed.noise,
                                         torch.Generator().manual_seed(seeds["observations"]))
        if distributed is not None:
            if len(observations) % distributed.world_size:
                raise ConfigError(
                    f"problem.observations.count: got {len(observations)}, must be divisible "
                    f"by the {distributed.world_size} ranks (equal shards keep the mean exact)")
            observations = observations[distributed.rank::distributed.world_size]
    monitor = (build_monitor(config.monitor, model, terms, seed=seeds["monitor"])
               if config.monitor.enabled else None)
    sketched_data = None
    data_gradient = config.terms.get("data")
    if data_gradient is not None and data_gradient.gradient == "sketched":
        adaptive = (RankController(1, data_gradient.max_rank or 4 * data_gradient.rank,
                                   data_gradient.rank_tolerance, data_gradient.rank_patience,
                                   rank=data_gradient.rank)
                    if data_gradient.rank_tolerance else None)
        sketched_data = SketchedGradient(
            model, rank=data_gradient.rank, variant=data_gradient.variant,
            generator=torch.Generator().manual_seed(seeds["sketched_gradient"]),
            n_rows=observed.count, adaptive_rank=adaptive)
    return Trainer(problem, model, train=config.train, sampling=config.sampling,
                   terms=terms, observations=observations, device=device, dtype=dtype,
                   monitor=monitor, extra_parameters=problem.parameters(),
                   sketched_data=sketched_data, distributed=distributed,
                   sampler_seed=seeds["sampler"],
                   low_rank_substeps=config.model.low_rank.substeps)
