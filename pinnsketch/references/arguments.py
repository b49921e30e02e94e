"""Argument checks shared by the reference solutions: one message format for bad numbers."""
from __future__ import annotations

import math
import numbers

__all__ = ["check_positive", "is_finite_real"]


def is_finite_real(value) -> bool:
    """A finite real number that is not a bool (numbers from YAML may arrive as 1.0)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_positive(name: str, value) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite real number > 0."""
    if not (is_finite_real(value) and value > 0):
        raise ValueError(f"{name} must be a finite real number > 0, got {value!r}")
