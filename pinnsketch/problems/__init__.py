"""PDE problems: the protocol, the built-ins, observations, and lookup by name."""
from pinnsketch.problems.allen_cahn import AllenCahn
from pinnsketch.problems.base import TERM_MEASURES, NoOptions, Problem
from pinnsketch.problems.burgers import Burgers, BurgersIdentification
from pinnsketch.problems.conditions import (neumann_residual, periodic_residual,
                                            time_derivative_residual)
from pinnsketch.problems.failure_modes import Convection, Reaction, Wave
from pinnsketch.problems.heat import Heat1D, Heat2D
from pinnsketch.problems.helmholtz import Helmholtz2D
from pinnsketch.problems.kdv import KdV
from pinnsketch.problems.klein_gordon import KleinGordon
from pinnsketch.problems.observations import make_observations
from pinnsketch.problems.poisson import Poisson
from pinnsketch.problems.registry import BUILTIN_PROBLEMS, problem_source, resolve_problem_class

__all__ = ["AllenCahn", "BUILTIN_PROBLEMS", "Burgers", "BurgersIdentification", "Convection",
           "Heat1D", "Heat2D", "Helmholtz2D", "KdV", "KleinGordon", "NoOptions", "Poisson", "Problem", "Reaction",
           "TERM_MEASURES", "Wave", "make_observations", "neumann_residual",
           "periodic_residual", "problem_source", "resolve_problem_class",
           "time_derivative_residual"]
