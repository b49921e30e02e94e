"""Argument checks shared by the reference solutions: one message format for bad numbers."""
from __future__ import annotations

import math
import numbers

__all__ = ["check_modes", "check_positive", "is_finite_real", "snapshot_stride"]


def is_finite_real(value) -> bool:
    """A finite real number that is not a bool (numbers from YAML may arrive as 1.0)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_positive(name: str, value) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a finite real number > 0."""
    if not (is_finite_real(value) and value > 0):
        raise ValueError(f"{name} must be a finite real number > 0, got {value!r}")


def check_modes(modes) -> None:
    """Raise ``ValueError`` unless ``modes`` (grid points of a real FFT) is even and >= 8."""
    if modes < 8 or modes % 2:
        raise ValueError(f"modes must be an even number >= 8, got {modes!r}")


def snapshot_stride(snapshot_dt: float, dt: float) -> int:
    """Steps of size ``dt`` between snapshots ``snapshot_dt`` apart; ``ValueError`` unless
    ``dt`` divides ``snapshot_dt``."""
    stride = round(snapshot_dt / dt)
    if stride < 1 or abs(stride * dt - snapshot_dt) > 1e-12:
        raise ValueError(f"dt must divide {snapshot_dt:g}, got {dt!r}")
    return stride
