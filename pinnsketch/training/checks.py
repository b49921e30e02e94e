"""Every check that needs more than the schema: the problem, its terms, the network's layers.

:func:`check_config` runs before anything is written or trained (through :func:`pinnsketch.train`
and ``pinnsketch check``); :func:`check_problem_outputs` evaluates a problem's methods once on
a few points at start-up, so a wrong shape fails loudly instead of broadcasting silently.
"""
from __future__ import annotations

import inspect
import os
from typing import Mapping

import torch

from pinnsketch.config import DTYPES, RunConfig, build_section
from pinnsketch.domain import Domain
from pinnsketch.errors import ConfigError
from pinnsketch.architectures import build_network
from pinnsketch.low_rank import replace_square_linears
from pinnsketch.model import embedding_width
from pinnsketch.monitor.banks import ThreeSketchBank, choose_bank
from pinnsketch.problems import TERM_MEASURES, Problem, resolve_problem_class
from pinnsketch.training.curriculum import Curriculum

__all__ = ["build_problem", "check_config", "check_problem", "check_problem_outputs",
           "parameter_count", "run_terms"]


def check_problem(problem: Problem) -> Problem:
    """Check a problem object defines what training needs; return it.

    Raises:
        ConfigError: one line naming the class and what it lacks or gets wrong.
    """
    name = type(problem).__name__
    if not isinstance(problem, Problem):
        raise ConfigError(f"problem: got a {name}, expected an instance of a pinnsketch.Problem "
                          f"subclass")
    domain = getattr(problem, "domain", None)
    if not isinstance(domain, Domain):
        raise ConfigError(f"problem {name}: defines no domain (set domain = Domain(...) as a "
                          f"class attribute or in __init__), got {domain!r}")
    names = getattr(problem, "input_names", None)
    if (not isinstance(names, tuple) or len(names) != domain.dim
            or not all(isinstance(n, str) for n in names)):
        raise ConfigError(f"problem {name}: input_names must be a tuple of {domain.dim} strings "
                          f"(one per coordinate of its domain, e.g. ('x', 't')), got {names!r}")
    for method in ("reference", "evaluation_grid"):
        value = getattr(problem, method)
        if value is not None and not callable(value):
            raise ConfigError(f"problem {name}: {method} must be a method or None, got {value!r}")
    return problem


def build_problem(config: RunConfig, problem: Problem | None = None) -> Problem:
    """The run's problem: ``problem`` itself (checked), or built from ``config.problem``
    (class looked up by name, options validated against its ``Options``).

    Raises:
        ConfigError: on an unknown problem, bad options or an incomplete problem class.
    """
    if problem is not None:
        if config.problem.options:
            raise ConfigError(f"problem: options {sorted(config.problem.options)} are given "
                              f"with a problem object; set them on the object instead")
        return check_problem(problem)
    if config.problem.type is None:
        raise ConfigError("problem.type: required key is missing (or pass problem=... to train)")
    search = [config.base_dir] if config.base_dir else []
    cls = resolve_problem_class(config.problem.type, search)
    options = build_section(cls.Options, config.problem.options, "problem")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise ConfigError(f"problem {cls.__name__}: does not define {', '.join(missing)} "
                          f"(e.g. def pde_residual(self, model, points) -> residual (N,))")
    parameters = inspect.signature(cls).parameters
    instance = cls(options) if parameters else cls()
    return check_problem(instance)


def run_terms(config: RunConfig, problem: Problem) -> tuple[str, ...]:
    """The loss terms of this run: the problem's physics terms, plus ``data`` with observations."""
    terms = problem.physics_terms(config.model.hard_constraints)
    if config.model.periodic:  # the embedding makes the periodic bc term hold exactly
        terms = tuple(t for t in terms if t != "bc")
    if config.problem.observations.count > 0:
        terms += ("data",)
    return terms


def check_config(config: RunConfig, problem: Problem | None = None) -> None:
    """Every cross-section check of ``config`` (with ``problem`` replacing its problem
    section): raises :class:`ConfigError` on the first failure, writes nothing."""
    problem = build_problem(config, problem)
    name = type(problem).__name__
    if config.model.hard_constraints and not problem.has_output_transform:
        raise ConfigError(f"model.hard_constraints: problem {name} defines no output transform "
                          f"(set it to false)")
    _check_periodic(config, problem)
    terms = run_terms(config, problem)
    measures = ("interior", "boundary", "initial")
    for term in terms:
        if term == "data":  # observation rows, not drawn from a measure
            continue
        points = problem.point_set(term)
        measure = problem.term_measures.get(points)
        if measure not in measures:
            raise ConfigError(f"problem {name}: term {points!r} has measure {measure!r} in "
                              f"term_measures (allowed: {', '.join(measures)})")
    _check_system(config, problem)
    for term, how in config.terms.items():
        if how.gradient == "sketched" and term != "data":
            raise ConfigError(f"terms.{term}.gradient: got 'sketched', but only the data term "
                              f"can be sketched (residual terms need exact higher derivatives)")
    if problem.parameters() and config.problem.observations.count == 0:
        raise ConfigError(f"problem.observations.count: got 0, but {name} identifies unknown "
                          f"coefficients and needs data (e.g. 2000)")
    if config.problem.observations.count and not problem.has_reference:
        raise ConfigError(f"problem.observations.count: got {config.problem.observations.count}, "
                          f"but {name} has no reference solution to draw observations from")
    sections: list[tuple[str, Mapping]] = [("train.weights", config.train.weights),
                                           ("terms", config.terms),
                                           ("monitor.terms", dict.fromkeys(config.monitor.terms))]
    for key, section in sections:
        for term in section:
            if term not in terms:
                raise ConfigError(f"{key}.{term}: unknown loss term "
                                  f"(terms of this run: {', '.join(terms)})")
    _check_low_rank(config)
    _check_model(config, problem)
    n_layers = len(network(config, problem).linear_layers)
    bad = [i for i in config.monitor.layers if not 0 <= i < n_layers]
    if bad:
        raise ConfigError(f"monitor.layers: got {list(bad)}, layer indices must be in "
                          f"[0, {n_layers - 1}] for a {config.model.type} of depth "
                          f"{config.model.depth} ({n_layers} Linear layers)")
    _check_dense_hessian(config, problem)
    _check_monitor_rank(config, problem)
    if config.monitor.curvature_steps and not config.monitor.enabled:
        raise ConfigError(f"monitor.curvature_steps: got {config.monitor.curvature_steps}, but "
                          f"the monitor is off; set monitor.enabled: true (or 0 steps)")
    if config.train.causal.chunks:
        if problem.domain.time is None:
            raise ConfigError(f"train.causal.chunks: got {config.train.causal.chunks}, but "
                              f"{name} is steady (no time axis to order the loss by); set 0")
    _check_curriculum(config, problem)
    _check_time_marching(config, problem)
    sampling = config.sampling
    if sampling.adaptive != "none" and sampling.adaptive_candidates < sampling.interior:
        raise ConfigError(f"sampling.adaptive_candidates: got {sampling.adaptive_candidates}, "
                          f"must be >= sampling.interior ({sampling.interior}) to draw from")
    if config.train.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: got 'cuda' but torch.cuda.is_available() is False "
                          "(allowed here: cpu)")
    data = config.terms.get("data")
    if (data is not None and data.gradient == "sketched"
            and int(os.environ.get("WORLD_SIZE", "1")) > 1):
        raise ConfigError("terms.data.gradient: 'sketched' is single-process only "
                          "(run without torchrun, or use 'exact')")


def _check_system(config: RunConfig, problem: Problem) -> None:
    """What a problem with several outputs or equations cannot use (yet)."""
    name, outputs, equations = type(problem).__name__, problem.output_names, problem.equations
    if not (isinstance(outputs, tuple) and outputs and all(isinstance(o, str) for o in outputs)
            and len(set(outputs)) == len(outputs)):
        raise ConfigError(f"problem {name}: output_names must be a tuple of distinct strings, "
                          f"got {outputs!r}")
    if not set(problem.compared_outputs) <= set(outputs):
        raise ConfigError(f"problem {name}: reference_outputs {problem.compared_outputs!r} "
                          f"are not all among output_names {outputs!r}")
    if equations == ("pde",) and len(outputs) == 1:
        return
    uses = [("train.causal.chunks", config.train.causal.chunks,
             "its weights order one pde residual in time"),
            ("train.time_marching.networks", config.train.time_marching.networks == "per_window",
             "a window's initial data are one output's values"),
            ("terms.data.gradient", config.terms.get("data") is not None
             and config.terms["data"].gradient == "sketched",
             "the sketched data gradient replays a single-output network")]
    for key, used, why in uses:
        if used:
            raise ConfigError(f"{key}: {name} is a system ({len(outputs)} outputs "
                              f"{', '.join(outputs)}; equations {', '.join(equations)}), "
                              f"and {why}; leave it off")


def _check_periodic(config: RunConfig, problem: Problem) -> None:
    declared, name = dict(problem.periodic_inputs), type(problem).__name__
    for key, period in config.model.periodic.items():
        if key not in declared:
            raise ConfigError(
                f"model.periodic.{key}: {name} is not periodic in {key!r} (periodic inputs: "
                f"{', '.join(f'{k} (period {v:g})' for k, v in declared.items()) or 'none'})")
        if abs(period - declared[key]) > 1e-12 * declared[key]:
            raise ConfigError(f"model.periodic.{key}: got period {period!r}, {name} is "
                              f"periodic in {key!r} with period {declared[key]!r}")
    missing = sorted(set(declared) - set(config.model.periodic))
    if config.model.periodic and missing:
        raise ConfigError(f"model.periodic: embeds {sorted(config.model.periodic)} but not "
                          f"{missing}, whose periodicity the bc term it drops also holds")


def _check_low_rank(config: RunConfig) -> None:
    model, low = config.model, config.model.low_rank
    if not low.rank:
        return
    high = low.max_rank or model.width // 2
    why = None
    if model.type != "mlp" or model.weight_factorization.enabled or model.depth < 2:
        why = (f"it needs model.type mlp without weight factorisation and depth >= 2 (hidden "
               f"width × width layers), got {model.type}, depth {model.depth}")
    elif not low.min_rank <= low.rank <= high <= model.width // 2:
        why = (f"it needs min_rank ({low.min_rank}) <= rank ({low.rank}) <= max_rank ({high}) "
               f"<= model.width // 2 ({model.width // 2})")
    elif config.train.first_order != "adam":
        why = f"train.first_order is {config.train.first_order!r}; the phases train with adam"
    elif config.train.lbfgs_steps:
        why = (f"train.lbfgs_steps is {config.train.lbfgs_steps}; the phase after Adam would "
               f"train fixed bases (set 0)")
    elif config.monitor.enabled:
        why = "the monitor is on; it reads dense Linear weights (set monitor.enabled: false)"
    elif any(t.gradient == "sketched" for t in config.terms.values()):
        why = "a term has sketched gradients, which replay dense Linear layers"
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        why = "this is a torchrun launch (not supported yet)"
    if why:
        raise ConfigError(f"model.low_rank.rank: got {low.rank}, but {why}")


def _check_time_marching(config: RunConfig, problem: Problem) -> None:
    marching, name = config.train.time_marching, type(problem).__name__
    windows = marching.windows
    if windows and problem.domain.time is None:
        raise ConfigError(f"train.time_marching.windows: got {windows}, but {name} is steady "
                          f"(no time axis to march along); set 0")
    if marching.networks == "shared":
        if windows > max(config.train.adam_steps, 1):
            raise ConfigError(f"train.time_marching.windows: got {windows}, must be <= "
                              f"train.adam_steps ({config.train.adam_steps}): each stage "
                              f"needs a step")
        return
    why = None
    if not windows:
        why = "train.time_marching.windows is 0; set the number of windows"
    elif config.model.hard_constraints:
        why = ("model.hard_constraints is true, and its output transform holds the problem's "
               "own initial condition; set it false (the windows' initial data are learned)")
    elif dict(problem.term_measures) != TERM_MEASURES:
        why = (f"{name} has the terms {', '.join(problem.term_measures)}; a window's initial "
               f"data come from the previous network's values only (pde, bc, ic)")
    elif config.problem.observations.count:
        why = "problem.observations.count is not 0 (observations span the whole interval)"
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        why = "this is a torchrun launch (windows train in one process)"
    if why:
        raise ConfigError(f"train.time_marching.networks: per_window cannot be used: {why}")


def _check_curriculum(config: RunConfig, problem: Problem) -> None:
    ramp = config.train.curriculum
    if not ramp.option:
        return
    try:
        Curriculum(problem, ramp.option, ramp.start, ramp.steps)
    except ConfigError as err:  # the problem's own check of the start value
        raise ConfigError(f"train.curriculum.start: {ramp.start!r} is not a valid "
                          f"{ramp.option} ({err})") from None
    except ValueError as err:
        raise ConfigError(f"train.curriculum: {err}") from None


def _check_model(config: RunConfig, problem: Problem) -> None:
    model = config.model
    if model.type == "pirate" and not model.fourier.features:
        raise ConfigError("model.type: 'pirate' runs its residual blocks on an embedding; "
                          "set model.fourier.features (e.g. 64) and model.fourier.scale")
    data = config.terms.get("data")
    if (data is not None and data.gradient == "sketched"
            and (model.type != "mlp" or model.weight_factorization.enabled)):
        raise ConfigError(f"terms.data.gradient: 'sketched' replays a plain MLP's layers; "
                          f"got model.type {model.type!r}"
                          f"{' with weight factorisation' if model.weight_factorization.enabled else ''}"
                          f" (use model.type: mlp without it, or gradient: exact)")


def network(config: RunConfig, problem: Problem, generator: torch.Generator | None = None,
            scales: torch.Generator | None = None) -> torch.nn.Module:
    """The network of ``config.model`` for ``problem`` (after the embedding), its weights
    from ``generator`` and its factorisation's scales from ``scales``; without them,
    throwaway weights (to count and list its layers: cheap next to training)."""
    model = config.model
    width = embedding_width(problem.domain.dim, len(model.periodic), model.fourier.features)
    factorization = model.weight_factorization
    net = build_network(model.type, width, len(problem.output_names), model.width, model.depth,
                         activation=model.activation, init=model.init,
                         generator=torch.Generator().manual_seed(0) if generator is None
                         else generator,
                         factorization=(factorization.mean, factorization.std,
                                        torch.Generator().manual_seed(1) if scales is None
                                        else scales)
                         if factorization.enabled else None)
    low = model.low_rank
    if not low.rank:
        return net
    return replace_square_linears(net, model.width, rank=low.rank,
                                  max_rank=low.max_rank or model.width // 2,
                                  min_rank=low.min_rank, tolerance=low.tolerance)


def parameter_count(config: RunConfig, problem: Problem) -> int:
    """Trainable numbers of the run: the network's parameters plus the problem's unknown
    coefficients."""
    counted = sum(p.numel() for p in network(config, problem).parameters())
    return counted + sum(p.numel() for p in problem.parameters())


def _check_monitor_rank(config: RunConfig, problem: Problem) -> None:
    monitor = config.monitor
    if not monitor.rank_tolerance:
        return
    if monitor.max_rank and monitor.max_rank < monitor.rank:
        raise ConfigError(f"monitor.max_rank: got {monitor.max_rank}, must be >= monitor.rank "
                          f"({monitor.rank}) (or 0: 4·rank)")
    layers = network(config, problem).linear_layers
    chosen = [layers[i] for i in monitor.layers] or layers
    shapes = {tuple(layer.weight.shape) for layer in chosen}
    high = monitor.max_rank or 4 * monitor.rank
    if not any(choose_bank(monitor.backend, m, n, min(monitor.rank, m, n)) is ThreeSketchBank
               and min(high, m, n) > min(monitor.rank, m, n) for m, n in shapes):
        raise ConfigError(
            f"monitor.rank_tolerance: got {monitor.rank_tolerance}, but no monitored layer is "
            f"sketched with room above monitor.rank (backend {monitor.backend!r}, shapes "
            f"{', '.join(f'{m}x{n}' for m, n in sorted(shapes))}: the EMA gradients are kept "
            f"exactly, or min(m, n) is reached); set monitor.backend: three_sketch on wider "
            f"layers, or leave rank_tolerance 0")


def _check_dense_hessian(config: RunConfig, problem: Problem) -> None:
    train = config.train
    if train.quasi_newton == "lbfgs":  # also without iterations: the optimiser is built
        return
    n = parameter_count(config, problem)
    mib = n * n * torch.empty((), dtype=DTYPES[train.dtype]).element_size() / 2 ** 20
    if mib > train.max_hessian_mib:
        raise ConfigError(
            f"train.quasi_newton: {train.quasi_newton!r} keeps a dense inverse Hessian of "
            f"{n} parameters ({mib:.0f} MiB), above train.max_hessian_mib "
            f"({train.max_hessian_mib:g}); use a smaller network, raise the limit, or "
            f"train.quasi_newton: lbfgs (O(p) memory)"
            + (" (train.lbfgs_steps is 0, but the phase's optimiser is built all the same, "
               "and a resume may extend the phase)" if train.lbfgs_steps == 0 else ""))


def _check_shape(name: str, method: str, value, expected: tuple[int, ...]) -> None:
    shape = tuple(getattr(value, "shape", ()))
    if shape != expected:
        raise ConfigError(f"problem {name}: {method} returned shape {shape}, expected "
                          f"{expected} (one value per point)")


def check_problem_outputs(problem: Problem, model: torch.nn.Module,
                          batch: Mapping[str, torch.Tensor]) -> None:
    """Evaluate the problem's methods once on (up to) 4 points per term of ``batch`` and
    check each returns one value per point: residuals, boundary and initial values,
    the output transform, and the reference on its evaluation grid.

    Raises:
        ConfigError: naming the method, the shape returned and the shape expected.
    """
    name = type(problem).__name__
    few = {t: p[:4].detach().clone().requires_grad_(t != "data") for t, p in batch.items()}
    checks = {"pde": "pde_residual(model, points)", "bc": "boundary_value(points)",
              "ic": "initial_value(points)"}
    outputs = len(problem.output_names)
    per_output = () if outputs == 1 else (outputs,)
    for term, points in few.items():
        if term == "bc":
            _check_shape(name, checks[term], problem.boundary_value(points),
                         (len(points),) + per_output)
        elif term == "ic":
            _check_shape(name, checks[term], problem.initial_value(points),
                         (len(points),) + per_output)
        elif term == "pde" and problem.equations != ("pde",):
            residual = problem.pde_residual(model, points)
            _check_shape(name, checks[term], residual,
                         (len(points), len(problem.equations)))
    residuals = problem.residuals(model, few)
    for term, residual in residuals.items():
        # (N,) or (N, k): k conditions per point, e.g. a periodic pair of values and slopes.
        expected = (len(few[problem.point_set(term)]),) + tuple(residual.shape[1:2])
        _check_shape(name, f"the '{term}' residual" if term not in checks else checks[term],
                     residual, expected)
    if problem.has_reference:
        grid, shape = problem.plot_grid()
        if grid.ndim != 2 or grid.shape[1] != problem.domain.dim:
            raise ConfigError(f"problem {name}: evaluation_grid() returned points of shape "
                              f"{grid.shape}, expected (N, {problem.domain.dim})")
        compared = len(problem.compared_outputs)
        values = problem.reference(grid[:4])
        _check_shape(name, "reference(points)", values,
                     (min(4, len(grid)),) + (() if outputs == 1 else (compared,)))
