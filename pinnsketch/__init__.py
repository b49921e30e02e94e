"""pinnsketch: physics-informed neural networks from YAML, with a gradient sketch monitor."""
from pinnsketch.version import __version__  # noqa: E402,F401

from pinnsketch.api import Run, check_config, load_problem, load_run, train  # noqa: E402
from pinnsketch.config import RunConfig, load_config  # noqa: E402
from pinnsketch.derivatives import gradient, laplacian, partial  # noqa: E402
from pinnsketch.domain import Domain  # noqa: E402
from pinnsketch.errors import ConfigError  # noqa: E402
from pinnsketch.problems import Problem  # noqa: E402

__all__ = ["ConfigError", "Domain", "Problem", "Run", "RunConfig", "check_config", "gradient",
           "laplacian", "load_config", "load_problem", "load_run", "partial", "train"]
