"""Problem classes by name: the built-ins, and user classes spelled ``"module:Class"``.

A ``"module:Class"`` module is imported from ``sys.path`` first, then looked for as a file
``module.py`` (dots as folders) in the working directory and beside the config file, in
that order; the error names every place it looked.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Iterable

from pinnsketch.errors import ConfigError, suggest
from pinnsketch.problems.base import Problem
from pinnsketch.problems.allen_cahn import AllenCahn
from pinnsketch.problems.burgers import Burgers, BurgersIdentification
from pinnsketch.problems.failure_modes import Convection, Reaction, ReactionDiffusion, Wave
from pinnsketch.problems.heat import Heat1D, Heat2D
from pinnsketch.problems.heat_varying import HeatVarying
from pinnsketch.problems.helmholtz import Helmholtz2D
from pinnsketch.problems.kdv import KdV
from pinnsketch.problems.klein_gordon import KleinGordon
from pinnsketch.problems.navier_stokes import Kovasznay, LidDrivenCavity
from pinnsketch.problems.poisson import Poisson
from pinnsketch.problems.poisson_holes import PoissonHoles

__all__ = ["BUILTIN_PROBLEMS", "problem_source", "resolve_problem_class"]

BUILTIN_PROBLEMS: dict[str, type[Problem]] = {
    "allen_cahn": AllenCahn,
    "burgers": Burgers,
    "burgers_identification": BurgersIdentification,
    "cavity": LidDrivenCavity,
    "convection": Convection,
    "heat": Heat1D,
    "heat2d": Heat2D,
    "heat_varying": HeatVarying,
    "helmholtz2d": Helmholtz2D,
    "kdv": KdV,
    "klein_gordon": KleinGordon,
    "kovasznay": Kovasznay,
    "poisson": Poisson,
    "poisson_holes": PoissonHoles,
    "reaction": Reaction,
    "reaction_diffusion": ReactionDiffusion,
    "wave": Wave,
}


def resolve_problem_class(name: str, search: Iterable[str | Path] = ()) -> type[Problem]:
    """A built-in problem by name, or a user class given as ``"package.module:ClassName"``.

    Args:
        name: the ``problem.type`` string.
        search: folders to look for ``module.py`` in after ``sys.path`` and the working
            directory (the config file's folder).

    Raises:
        ConfigError: naming the allowed built-ins, where the module was looked for, or why
            the class cannot be used.
    """
    if ":" not in name:
        if name not in BUILTIN_PROBLEMS:
            raise ConfigError(f"problem.type: got {name!r}{suggest(name, BUILTIN_PROBLEMS)} "
                              f"(allowed: {', '.join(BUILTIN_PROBLEMS)}, or 'module:Class')")
        return BUILTIN_PROBLEMS[name]
    module_name, _, class_name = name.partition(":")
    if not module_name or not class_name:
        raise ConfigError(f"problem.type: got {name!r}, expected 'module:Class'")
    module = _import(module_name, [Path.cwd(), *map(Path, search)])
    cls = getattr(module, class_name, None)
    if cls is None:
        classes = [n for n, obj in vars(module).items() if inspect.isclass(obj)
                   and issubclass(obj, Problem) and obj is not Problem]
        raise ConfigError(f"problem.type: module {module_name!r} ({module.__file__}) has no "
                          f"class {class_name!r}{suggest(class_name, classes)} (Problem "
                          f"classes there: {', '.join(classes) or 'none'})")
    if not (inspect.isclass(cls) and issubclass(cls, Problem)):
        raise ConfigError(f"problem.type: {name!r} is a {type(cls).__name__}, not a subclass "
                          f"of pinnsketch.Problem")
    return cls


def _import(module_name: str, folders: list[Path]):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is None or not module_name.startswith(err.name):
            raise ConfigError(f"problem.type: importing {module_name!r} failed: {err}") from None
    relative = Path(*module_name.split(".")).with_suffix(".py")
    looked = []
    for folder in dict.fromkeys(folder.resolve() for folder in folders):
        path = folder / relative
        looked.append(str(path))
        if path.is_file():
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception:
                del sys.modules[module_name]
                raise
            return module
    raise ConfigError(f"problem.type: cannot import module {module_name!r}: not on sys.path, "
                      f"and no file at {' or '.join(looked)}")


def problem_source(problem: Problem) -> dict[str, str | None]:
    """Where a problem's class comes from: ``{"type", "module", "class", "file"}``; ``type``
    is the spelling that rebuilds it from YAML (None for a class defined in ``__main__``)."""
    cls = type(problem)
    builtin = next((n for n, c in BUILTIN_PROBLEMS.items() if c is cls), None)
    module = cls.__module__
    file = inspect.getsourcefile(cls) if module != "builtins" else None
    spelling = builtin or (None if module == "__main__" else f"{module}:{cls.__qualname__}")
    return {"type": spelling, "module": module, "class": cls.__qualname__,
            "file": str(Path(file).resolve()) if file else None}
