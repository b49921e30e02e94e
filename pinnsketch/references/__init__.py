"""Trusted reference solutions, computed here (no downloads), each with its argument checks."""
from pinnsketch.references.cole_hopf import burgers_cole_hopf, burgers_reference_grid
from pinnsketch.references.heat_series import heat_1d_series, heat_2d_series

__all__ = ["burgers_cole_hopf", "burgers_reference_grid", "heat_1d_series", "heat_2d_series"]
