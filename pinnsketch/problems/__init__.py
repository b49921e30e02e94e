"""Built-in PDE problems and the resolver for user-defined ones (``"module:Class"``)."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from pinnsketch.config import ConfigError
from pinnsketch.problems.base import Problem, make_observations
from pinnsketch.problems.burgers import Burgers, BurgersIdentification
from pinnsketch.problems.heat import Heat1D, Heat2D
from pinnsketch.problems.poisson import Poisson

__all__ = ["BUILTIN_PROBLEMS", "Problem", "make_observations", "resolve_problem_class"]

BUILTIN_PROBLEMS: dict[str, type[Problem]] = {
    "burgers": Burgers,
    "burgers_identification": BurgersIdentification,
    "heat": Heat1D,
    "heat2d": Heat2D,
    "poisson": Poisson,
}


def resolve_problem_class(name: str) -> type[Problem]:
    """A built-in problem by name, or a user class given as ``"package.module:ClassName"``.

    Raises:
        ConfigError: naming the allowed built-ins, or why the user class cannot be used.
    """
    if ":" not in name:
        if name not in BUILTIN_PROBLEMS:
            import difflib

            close = difflib.get_close_matches(name, BUILTIN_PROBLEMS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"problem.type: got {name!r}{hint} (allowed: "
                              f"{', '.join(BUILTIN_PROBLEMS)}, or 'module:Class')")
        return BUILTIN_PROBLEMS[name]
    module_name, _, class_name = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        module = _load_from_working_directory(module_name)
        if module is None:
            raise ConfigError(f"problem.type: cannot import module {module_name!r} ({err})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Problem)):
        raise ConfigError(f"problem.type: {name!r} is not a pinnsketch.problems.Problem "
                          f"subclass")
    return cls


def _load_from_working_directory(module_name: str):
    """Import ``module_name`` from a file under the working directory, or return None.

    ``python -m pinnsketch`` sees the working directory, the ``pinnsketch`` script does
    not; this makes ``type: "my_pde:MyPDE"`` work the same from both.
    """
    path = Path.cwd() / (module_name.replace(".", "/") + ".py")
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
