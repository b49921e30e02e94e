"""Reading a run configuration: YAML files, ``--set`` overrides, and back to plain data.

:func:`load_config` checks the schema (keys, types, ranges, finiteness) and returns a frozen
:class:`~pinnsketch.config.schema.RunConfig`. Checks that need the problem (its terms, its
options, the network's layers) are :func:`pinnsketch.check_config`'s, one layer up.
"""
from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any, Mapping

import yaml

from pinnsketch.config.fields import build_section
from pinnsketch.config.phases import expand_schedule
from pinnsketch.config.schema import ProblemConfig, RunConfig
from pinnsketch.errors import ConfigError

__all__ = ["config_from_dict", "config_to_dict", "load_config", "parse_yaml"]


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-3`` as a float, as YAML 1.2 does (PyYAML's 1.1 wants 1.0e-3)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"""),
    list("-+0123456789"))


def parse_yaml(text: str) -> Any:
    """Plain Python data from YAML text (safe loader, ``1e-3`` is a float)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def config_to_dict(config: Any) -> Any:
    """Plain-Python (YAML-safe) form of a config dataclass; round-trips through load.

    Problem options are written flat beside ``type``, as a user writes them; ``base_dir``
    (where the YAML file was) is not part of the configuration and is not written.
    """
    if isinstance(config, ProblemConfig):
        head = {"type": config.type} if config.type is not None else {}
        return {**head, **config_to_dict(config.options),
                "observations": config_to_dict(config.observations)}
    if dataclasses.is_dataclass(config):
        return {f.name: config_to_dict(getattr(config, f.name))
                for f in dataclasses.fields(config) if f.compare}
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
        value = parse_yaml(raw) if raw.strip() else ""
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
        tree = parse_yaml(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} invalid YAML ({getattr(err, 'problem', err)})") from None
    if tree is None:
        tree = {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return tree


def config_from_dict(tree: Mapping[str, Any], *, base_dir: str | Path | None = None) -> RunConfig:
    """Validate a plain mapping (as read from YAML) into a :class:`RunConfig`.

    Args:
        tree: the sections; the problem's options stand beside its ``type``.
        base_dir: the folder of the YAML file, searched for ``"module:Class"`` problems.
    """
    if not isinstance(tree, Mapping):
        raise ConfigError(f"config: got {tree!r}, expected a mapping of sections")
    tree = expand_schedule(tree)
    problem = tree.get("problem", {})
    if isinstance(problem, Mapping):
        reserved = {"type", "observations"}
        tree["problem"] = {**{k: v for k, v in problem.items() if k in reserved},
                           "options": {k: v for k, v in problem.items() if k not in reserved}}
    config = build_section(RunConfig, tree)
    if base_dir is not None:
        config = dataclasses.replace(config, base_dir=str(base_dir))
    return config


def load_config(path: str | Path, overrides: typing.Sequence[str] | None = None, *,
                require_type: bool = True) -> RunConfig:
    """Read a YAML run description and apply ``key.path=value`` overrides.

    Args:
        path: YAML file with the sections problem, model, sampling, train, monitor, output.
        overrides: assignments such as ``"train.adam_steps=200"``; values are parsed as YAML.
        require_type: ``problem.type`` must be given (False where a problem object is).

    Returns:
        The schema-checked, frozen configuration (``problem.type`` is required here; check
        everything else that needs the problem with :func:`pinnsketch.check_config`).

    Raises:
        ConfigError: with one line naming the offending key path and what is allowed.
    """
    path = Path(path)
    tree = _read_yaml(path)
    for assignment in overrides or ():
        _apply_override(tree, assignment)
    config = config_from_dict(tree, base_dir=path.resolve().parent)
    if require_type and config.problem.type is None:
        raise ConfigError("problem.type: required key is missing (a built-in name, see "
                          "`pinnsketch problems`, or 'module:Class')")
    return config
