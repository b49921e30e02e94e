"""PDE problems: the protocol, the built-ins, observations, and lookup by name."""
from pinnsketch.problems.base import NoOptions, Problem
from pinnsketch.problems.burgers import Burgers, BurgersIdentification
from pinnsketch.problems.heat import Heat1D, Heat2D
from pinnsketch.problems.observations import make_observations
from pinnsketch.problems.poisson import Poisson
from pinnsketch.problems.registry import BUILTIN_PROBLEMS, problem_source, resolve_problem_class

__all__ = ["BUILTIN_PROBLEMS", "Burgers", "BurgersIdentification", "Heat1D", "Heat2D",
           "NoOptions", "Poisson", "Problem", "make_observations", "problem_source",
           "resolve_problem_class"]
