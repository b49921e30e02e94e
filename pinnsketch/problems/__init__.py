"""PDE problems: the protocol, the built-ins, observations, and lookup by name."""
from pinnsketch.problems.allen_cahn import AllenCahn
from pinnsketch.problems.base import TERM_MEASURES, NoOptions, Problem
from pinnsketch.problems.burgers import Burgers, BurgersIdentification
from pinnsketch.problems.conditions import (neumann_residual, periodic_residual,
                                            time_derivative_residual)
from pinnsketch.problems.failure_modes import Convection, Reaction, ReactionDiffusion, Wave
from pinnsketch.problems.heat import Heat1D, Heat2D
from pinnsketch.problems.heat_varying import HeatVarying
from pinnsketch.problems.helmholtz import Helmholtz2D
from pinnsketch.problems.kdv import KdV
from pinnsketch.problems.navier_stokes import Kovasznay, LidDrivenCavity, navier_stokes_residual
from pinnsketch.problems.klein_gordon import KleinGordon
from pinnsketch.problems.observations import make_observations
from pinnsketch.problems.poisson import Poisson
from pinnsketch.problems.poisson_holes import PoissonHoles
from pinnsketch.problems.window import TimeWindow, window_edges
from pinnsketch.problems.registry import BUILTIN_PROBLEMS, problem_source, resolve_problem_class

__all__ = ["AllenCahn", "BUILTIN_PROBLEMS", "Burgers", "BurgersIdentification",
           "Convection", "Heat1D", "Heat2D", "HeatVarying", "Helmholtz2D", "KdV", "KleinGordon",
           "Kovasznay", "LidDrivenCavity", "make_observations", "navier_stokes_residual",
           "neumann_residual", "NoOptions", "periodic_residual", "Poisson", "PoissonHoles",
           "Problem", "problem_source", "Reaction", "ReactionDiffusion",
           "resolve_problem_class", "TERM_MEASURES", "time_derivative_residual", "TimeWindow",
           "Wave", "window_edges"]
