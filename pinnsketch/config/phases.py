"""The explicit schedule ``train.phases`` and the step scale, turned into the shorthand.

A run is at most one first-order phase (``adam`` or ``sketchy``) followed by at most one
phase of ``train.quasi_newton``'s methods. Written out::

    train:
      phases:
        - {optimizer: adam, steps: 1000, lr: 1.0e-3, redraw_every: 250}
        - {optimizer: ssbroyden2, steps: 5000, redraw_every: 500}

is the same run as the shorthand ``adam_steps: 1000, lr: 1.0e-3, lbfgs_steps: 5000,
quasi_newton: ssbroyden2`` with ``sampling.resample_every: 250`` and
``sampling.lbfgs_resample_every: 500``. A config uses one form, never both: with
``train.phases`` the shorthand keys and the two ``sampling`` redraw keys are errors, so
point redraws are configured in one place per form. The run folder's ``config.yaml`` is
written in the shorthand (what a resume reads and extends).

``train.steps_scale`` multiplies every phase's steps (rounded up) in either form: the one
way to shorten, or lengthen, any run.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from pinnsketch.config.fields import build_section
from pinnsketch.config.schema import FIRST_ORDER_METHODS, PhaseConfig, TrainConfig
from pinnsketch.errors import ConfigError

__all__ = ["expand_schedule"]

# phase key -> the shorthand train key it sets, per kind of phase (None: set elsewhere).
_FIRST_ORDER_KEYS = {"optimizer": "first_order", "steps": "adam_steps", "lr": "lr",
                     "lr_decay": "lr_decay", "lr_decay_every": "lr_decay_every",
                     "rank": "sketchy_rank", "redraw_every": None}
_SECOND_ORDER_KEYS = {"optimizer": "quasi_newton", "steps": "lbfgs_steps",
                      "history": "lbfgs_history", "tolerance_grad": "lbfgs_tolerance_grad",
                      "tolerance_change": "lbfgs_tolerance_change", "redraw_every": None}
_REDRAW_KEYS = ("resample_every", "lbfgs_resample_every")  # sampling keys, per kind
_DEFAULT_STEPS = {f.name: f.default for f in dataclasses.fields(TrainConfig)
                  if f.name in ("adam_steps", "lbfgs_steps")}
_SHORTHAND = tuple(dict.fromkeys([*_FIRST_ORDER_KEYS.values(), *_SECOND_ORDER_KEYS.values()]))


def expand_schedule(tree: Mapping[str, Any]) -> dict[str, Any]:
    """The config tree with ``train.phases`` written as the shorthand and
    ``train.steps_scale`` applied; other sections untouched.

    Raises:
        ConfigError: a malformed phase list, a phase key that does not apply to its
            optimiser, phases out of order, or phases beside the shorthand keys.
    """
    tree = dict(tree)
    train = tree.get("train", {})
    if not isinstance(train, Mapping) or not ({"phases", "steps_scale"} & set(train)):
        return tree
    train = dict(train)
    scale = train.pop("steps_scale", 1.0)
    if "phases" in train:
        sampling = tree.get("sampling", {})
        sampling = dict(sampling) if isinstance(sampling, Mapping) else sampling
        train, sampling = _expand_phases(train, sampling)
        tree["sampling"] = sampling
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (
            math.isfinite(scale) and scale > 0):
        raise ConfigError(f"train.steps_scale: got {scale!r}, must be a number > 0")
    for key in ("adam_steps", "lbfgs_steps"):
        steps = train.get(key, _DEFAULT_STEPS[key])
        if isinstance(steps, (int, float)) and not isinstance(steps, bool) and steps > 0:
            train[key] = max(1, math.ceil(steps * scale - 1e-9))
    tree["train"] = train
    return tree


def _expand_phases(train: dict, sampling: Any) -> tuple[dict, Any]:
    phases = train.pop("phases")
    if not isinstance(phases, (list, tuple)) or not phases:
        raise ConfigError(f"train.phases: got {phases!r}, expected a list of one or two "
                          f"phases such as [{{optimizer: adam, steps: 1000}}, "
                          f"{{optimizer: ssbroyden2, steps: 5000}}]")
    for key in _SHORTHAND:
        if key in train:
            raise ConfigError(f"train.{key}: cannot be combined with train.phases (set it in "
                              f"the phase it belongs to, or drop train.phases)")
    if isinstance(sampling, Mapping):
        for key in _REDRAW_KEYS:
            if key in sampling:
                raise ConfigError(f"sampling.{key}: cannot be combined with train.phases "
                                  f"(set redraw_every in the phase)")
    built = [build_section(PhaseConfig, phase, f"train.phases[{i}]")
             for i, phase in enumerate(phases)]
    kinds = ["first" if p.optimizer in FIRST_ORDER_METHODS else "second" for p in built]
    if kinds not in (["first"], ["second"], ["first", "second"]):
        raise ConfigError(f"train.phases: got {', '.join(p.optimizer for p in built)}; a "
                          f"schedule is at most one first-order phase "
                          f"({', '.join(FIRST_ORDER_METHODS)}) followed by at most one "
                          f"quasi-Newton phase (lbfgs or a dense method)")
    train["adam_steps"], train["lbfgs_steps"] = 0, 0
    for i, (phase, kind) in enumerate(zip(built, kinds)):
        keys = _FIRST_ORDER_KEYS if kind == "first" else _SECOND_ORDER_KEYS
        for name, train_key in _phase_items(phase, i, keys):
            if train_key is not None:
                train[train_key] = getattr(phase, name)
        if phase.redraw_every and isinstance(sampling, dict):
            sampling[_REDRAW_KEYS[kind == "second"]] = phase.redraw_every
    return train, sampling


def _phase_items(phase: PhaseConfig, index: int, keys: Mapping[str, str | None]):
    """The (phase key, train key) pairs this phase sets; an error for a key that does not
    apply to its optimiser (``rank`` is Sketchy's, ``history`` L-BFGS's)."""
    only = {"rank": "sketchy", "history": "lbfgs"}  # keys of one optimiser
    applies = [k for k in keys if only.get(k, phase.optimizer) == phase.optimizer]
    for name in phase.given:
        if name not in applies:
            raise ConfigError(f"train.phases[{index}].{name}: does not apply to optimizer "
                              f"{phase.optimizer} (its keys: {', '.join(sorted(applies))})")
        yield name, keys[name]
