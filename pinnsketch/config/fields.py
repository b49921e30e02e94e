"""Validation of frozen config dataclasses from plain mappings (YAML), field by field.

A field's allowed range or choices live in its metadata (:func:`option`); :func:`build_section`
checks keys first (unknown before missing), then each value's type and range, and raises
:class:`~pinnsketch.errors.ConfigError` with one line naming the dotted key path, the bad
value and what is allowed.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import math
import types
import typing
from dataclasses import field
from typing import Any, Mapping

from pinnsketch.errors import ConfigError, suggest

__all__ = ["build_section", "option"]


def option(default: Any = dataclasses.MISSING, *, low: float | None = None,
           high: float | None = None, strict_low: bool = False,
           choices: typing.Iterable[str] | None = None, default_factory: Any = dataclasses.MISSING):
    """A dataclass field with its allowed range or choices recorded in the metadata.

    ``choices`` is usually the key view of the registry that turns the name into an object
    (one registry per concept feeds both validation and the error message).
    """
    metadata = {"low": low, "high": high, "strict_low": strict_low,
                "choices": tuple(choices) if choices is not None else None}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _check_keys(mapping: Mapping[str, Any], allowed: typing.Iterable[str], path: str) -> None:
    allowed = list(allowed)
    for key in mapping:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key{suggest(str(key), allowed)} "
                              f"(allowed: {', '.join(allowed)})")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats and
    integral floats (``1e3``) for ints; NaN and ±inf are never accepted."""
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
        if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
            return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path}: got {value!r}, expected a list of {len(args)} values")
        return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin in (collections.abc.Mapping, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: got {value!r}, expected a mapping")
        return {str(k): _coerce(v, args[1], f"{path}.{k}") if args else v
                for k, v in value.items()}
    if origin in (list, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: got {value!r}, expected a list")
        return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: got {value!r}, expected true or false")
        return value
    if tp is int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)  # 1e3 from YAML is a float; it names an integer exactly
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: got {value!r}, expected an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: got {value!r}, expected a number")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: got {value!r}, expected a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: got {value!r}, expected a string")
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {path}")  # internal: a schema bug


def _check_range(value: Any, meta: Mapping[str, Any], path: str) -> None:
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{path}: got {value!r}{suggest(str(value), choices)} "
                          f"(allowed: {', '.join(choices)})")
    low, high = meta.get("low"), meta.get("high")
    values = (tuple(value.values()) if isinstance(value, Mapping)
              else value if isinstance(value, tuple) else (value,))
    for v in values:
        if low is not None and (v < low or (meta.get("strict_low") and v == low)):
            op = ">" if meta.get("strict_low") else ">="
            bound = f"{op} {low}" + (f" and <= {high}" if high is not None else "")
            raise ConfigError(f"{path}: got {value!r}, must be {bound}")
        if high is not None and v > high:
            raise ConfigError(f"{path}: got {value!r}, must be <= {high}")


def build_section(cls: type, mapping: Mapping[str, Any], path: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from a mapping, validating every field.

    Unknown keys are reported before missing ones (a misspelled section name must say so,
    not that the section it meant is missing).

    Raises:
        ConfigError: on an unknown key, a missing required key, a wrong type, a non-finite
            number or a value out of range; the message names the dotted key path.
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{path or 'config'}: got {mapping!r}, expected a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("yaml", True)}
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
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:  # a section's own cross-field check
        raise ConfigError(f"{path or 'config'}: {err}") from None
