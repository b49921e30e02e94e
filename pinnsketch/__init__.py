"""pinnsketch: physics-informed neural networks from YAML, with a gradient sketch monitor."""
__version__ = "0.1.0"

from pinnsketch.api import Run, load_problem, load_run, train  # noqa: E402
from pinnsketch.config import ConfigError, RunConfig, load_config  # noqa: E402
from pinnsketch.problems import Problem  # noqa: E402

__all__ = ["ConfigError", "Problem", "Run", "RunConfig", "load_config", "load_problem",
           "load_run", "train"]
