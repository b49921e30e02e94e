"""Run configuration: frozen dataclasses, the only YAML reader, and all validation.

A YAML file has six sections (``problem``, ``model``, ``sampling``, ``train``, ``monitor``,
``output``). :func:`load_config` reads it, applies ``--set key.path=value`` overrides and
returns a validated, frozen :class:`RunConfig`. Every bad input raises :class:`ConfigError`
with one line naming the key path, the bad value and what is allowed.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = [
    "ConfigError",
    "ModelConfig",
    "MonitorConfig",
    "ObservationConfig",
    "OutputConfig",
    "ProblemConfig",
    "RunConfig",
    "SamplingConfig",
    "TermGradientConfig",
    "TrainConfig",
    "build_section",
    "config_to_dict",
    "load_config",
]


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-3`` as a float, as YAML 1.2 does (PyYAML's 1.1 wants 1.0e-3)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"""),
    list("-+0123456789"))


def _parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line fit for a user."""


def _option(default: Any = dataclasses.MISSING, *, low: float | None = None,
            high: float | None = None, strict_low: bool = False,
            choices: tuple[str, ...] | None = None, default_factory: Any = dataclasses.MISSING):
    """A dataclass field with its allowed range or choices recorded in the metadata."""
    metadata = {"low": low, "high": high, "strict_low": strict_low, "choices": choices}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# ----------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObservationConfig:
    """Observation data drawn from the reference solution for a data-fit term.

    Attributes:
        count: number of observation points; 0 means no data term.
        noise: standard deviation of Gaussian noise relative to the std of the observed
            values (0.01 = 1% noise, as in Raissi et al. 2019).
    """

    count: int = _option(0, low=0)
    noise: float = _option(0.0, low=0.0)


@dataclass(frozen=True)
class ProblemConfig:
    """Which PDE to solve.

    Attributes:
        type: a built-in problem name (see ``pinnsketch problems``) or ``"module:Class"``.
        options: problem-specific options, validated against the problem's ``Options``.
        observations: optional observation data for a ``data`` term.
    """

    type: str
    options: Mapping[str, Any] = field(default_factory=dict)
    observations: ObservationConfig = field(default_factory=ObservationConfig)


@dataclass(frozen=True)
class ModelConfig:
    """Fully connected network u_θ: inputs → ``depth`` hidden layers of ``width`` → 1."""

    width: int = _option(20, low=1)
    depth: int = _option(3, low=1)
    activation: str = _option("tanh", choices=("tanh", "sin", "gelu", "silu", "softplus"))
    init: str = _option("xavier_normal", choices=("xavier_normal", "xavier_uniform",
                                                   "kaiming_normal", "kaiming_uniform"))
    normalize_inputs: bool = True
    hard_constraints: bool = False


@dataclass(frozen=True)
class SamplingConfig:
    """Collocation points per measure and how they are drawn.

    Attributes:
        method: ``uniform`` random, Latin hypercube ``lhs`` or scrambled ``sobol``.
        interior: points for the PDE residual.
        boundary: points on the spatial boundary (× time for evolution problems).
        initial: points on the initial time slice (evolution problems only).
        resample_every: draw fresh points every this many Adam steps; 0 never.
        adaptive: ``none``, or ``rad``: residual-based adaptive distribution (Wu et al.
            2023, k = 1, c = 1) — interior points drawn from ``adaptive_candidates``
            uniform candidates with probability ∝ |r|/mean|r| + 1, at every resample and
            once more before L-BFGS.
        adaptive_candidates: size of the candidate pool for ``rad``.
        lbfgs_resample_every: draw fresh points every this many L-BFGS iterations and
            restart its curvature history (pairs from other points would mislead it); 0 never.
    """

    method: str = _option("lhs", choices=("uniform", "lhs", "sobol"))
    interior: int = _option(2000, low=1)
    boundary: int = _option(100, low=1)
    initial: int = _option(100, low=1)
    resample_every: int = _option(0, low=0)
    adaptive: str = _option("none", choices=("none", "rad"))
    adaptive_candidates: int = _option(20000, low=1)
    lbfgs_resample_every: int = _option(0, low=0)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation schedule: Adam for ``adam_steps``, then L-BFGS for ``lbfgs_steps``.

    Attributes:
        lr: Adam learning rate.
        lr_decay: multiplicative decay of the learning rate applied every ``lr_decay_every``
            Adam steps (1.0 keeps it constant).
        eval_every: steps between evaluations (losses, rel L2) and L-BFGS chunk length.
        checkpoint_every: steps between checkpoints (rounded up to an evaluation).
        weights: per-term loss weights; unnamed terms weigh 1.
        lbfgs_history: L-BFGS history size.
        lbfgs_tolerance_grad / lbfgs_tolerance_change: L-BFGS stopping tolerances.
        distributed_backend: process-group backend under torchrun; ``auto`` is nccl on
            CUDA and gloo on CPU.
    """

    adam_steps: int = _option(10000, low=0)
    lbfgs_steps: int = _option(0, low=0)
    lr: float = _option(1e-3, low=0.0, strict_low=True)
    lr_decay: float = _option(1.0, low=0.0, high=1.0, strict_low=True)
    lr_decay_every: int = _option(1000, low=1)
    eval_every: int = _option(500, low=1)
    checkpoint_every: int = _option(2000, low=1)
    seed: int = _option(0, low=0)
    dtype: str = _option("float32", choices=("float32", "float64"))
    device: str = _option("cpu", choices=("cpu", "cuda"))
    weights: Mapping[str, float] = field(default_factory=dict)
    lbfgs_history: int = _option(50, low=1)
    lbfgs_tolerance_grad: float = _option(1e-9, low=0.0)
    lbfgs_tolerance_change: float = _option(1e-12, low=0.0)
    distributed_backend: str = _option("auto", choices=("auto", "gloo", "nccl"))


@dataclass(frozen=True)
class TermGradientConfig:
    """How the weight gradients of one loss term are formed (see sketched_grad)."""

    gradient: str = _option("exact", choices=("exact", "sketched"))
    rank: int = _option(8, low=1)
    variant: str = _option("batch", choices=("batch", "ema"))


@dataclass(frozen=True)
class MonitorConfig:
    """The gradient sketch monitor (off unless ``enabled``)."""

    enabled: bool = False
    rank: int = _option(4, low=1)
    beta: float = _option(0.9, low=0.0, high=0.999999)
    every: int = _option(10, low=1)
    backend: str = _option("three_sketch", choices=("three_sketch", "fd"))
    terms: tuple[str, ...] = ()
    layers: tuple[int, ...] = ()
    history: int = _option(128, low=8)


@dataclass(frozen=True)
class OutputConfig:
    """Where and what a run writes. ``dir`` defaults to ``runs/<problem>-<timestamp>``."""

    dir: str | None = None
    plots: bool = True
    progress: bool = True


@dataclass(frozen=True)
class RunConfig:
    """A complete, validated run description."""

    problem: ProblemConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    terms: Mapping[str, TermGradientConfig] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------
# Building and validation
# ----------------------------------------------------------------------------------------
def _suggest(key: str, allowed: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _check_keys(mapping: Mapping[str, Any], allowed: typing.Iterable[str], path: str) -> None:
    allowed = list(allowed)
    for key in mapping:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key{_suggest(str(key), allowed)} "
                              f"(allowed: {', '.join(allowed)})")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], path)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: got {value!r}, expected a mapping of "
                              f"{', '.join(f.name for f in dataclasses.fields(tp))}")
        return build_section(tp, value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: got {value!r}, expected a list")
        return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (collections.abc.Mapping, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: got {value!r}, expected a mapping")
        return {str(k): _coerce(v, args[1], f"{path}.{k}") if args else v
                for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: got {value!r}, expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: got {value!r}, expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: got {value!r}, expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: got {value!r}, expected a string")
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {path}")  # internal: a schema bug


def _check_range(value: Any, meta: Mapping[str, Any], path: str) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{path}: got {value!r}{_suggest(str(value), choices)} "
                          f"(allowed: {', '.join(choices)})")
    low, high = meta.get("low"), meta.get("high")
    if low is not None and (value < low or (meta.get("strict_low") and value == low)):
        op = ">" if meta.get("strict_low") else ">="
        bound = f"{op} {low}" + (f" and <= {high}" if high is not None else "")
        raise ConfigError(f"{path}: got {value!r}, must be {bound}")
    if high is not None and value > high:
        raise ConfigError(f"{path}: got {value!r}, must be <= {high}")


def build_section(cls: type, mapping: Mapping[str, Any], path: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from a mapping, validating every field.

    Raises:
        ConfigError: on an unknown key, a missing required key, a wrong type or a value out
            of range; the message names the dotted key path.
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{path or 'config'}: got {mapping!r}, expected a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _check_keys(mapping, fields, path)
    hints = typing.get_type_hints(cls)
    values = {}
    for name, spec in fields.items():
        where = f"{path}.{name}" if path else name
        if name not in mapping:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: required key is missing")
            continue
        value = _coerce(mapping[name], hints[name], where)
        if value is not None:
            _check_range(value, spec.metadata, where)
        values[name] = value
    return cls(**values)


def config_to_dict(config: Any) -> Any:
    """Plain-Python (YAML-safe) form of a config dataclass; round-trips through load.

    Problem options are written flat beside ``type``, as a user writes them.
    """
    if isinstance(config, ProblemConfig):
        return {"type": config.type, **config_to_dict(config.options),
                "observations": config_to_dict(config.observations)}
    if dataclasses.is_dataclass(config):
        return {f.name: config_to_dict(getattr(config, f.name))
                for f in dataclasses.fields(config)}
    if isinstance(config, Mapping):
        return {k: config_to_dict(v) for k, v in config.items()}
    if isinstance(config, tuple):
        return [config_to_dict(v) for v in config]
    return config


def _apply_override(tree: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected key.path=value")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {assignment!r}: empty component in key path {key!r}")
    try:
        value = _parse_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r} ({err.problem})") from None
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        tree = _parse_yaml(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} invalid YAML ({getattr(err, 'problem', err)})") from None
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return tree


def config_from_dict(tree: Mapping[str, Any]) -> RunConfig:
    """Validate a plain mapping (as read from YAML) into a :class:`RunConfig`."""
    tree = dict(tree)
    problem = tree.get("problem")
    if problem is None:
        raise ConfigError("problem: required section is missing")
    if isinstance(problem, Mapping):
        problem = dict(problem)
        reserved = {"type", "observations"}
        options = {k: problem.pop(k) for k in list(problem) if k not in reserved}
        if "options" in options and isinstance(options["options"], Mapping):
            options = {**options.pop("options"), **options}
        problem["options"] = options
        tree["problem"] = problem
    config = build_section(RunConfig, tree)
    from pinnsketch.problems import resolve_problem_class  # problems depend on config

    problem_cls = resolve_problem_class(config.problem.type)
    options = build_section(problem_cls.Options, config.problem.options, "problem")
    return dataclasses.replace(
        config, problem=dataclasses.replace(config.problem, options=options))


def load_config(path: str | Path, overrides: typing.Sequence[str] | None = None) -> RunConfig:
    """Read a YAML run description and apply ``key.path=value`` overrides.

    Args:
        path: YAML file with the sections problem, model, sampling, train, monitor, output.
        overrides: assignments such as ``"train.adam_steps=200"``; values are parsed as YAML.

    Returns:
        The validated, frozen configuration.

    Raises:
        ConfigError: with one line naming the offending key path and what is allowed.
    """
    tree = _read_yaml(Path(path))
    for assignment in overrides or ():
        _apply_override(tree, assignment)
    return config_from_dict(tree)
