"""Figures (matplotlib ``Figure`` objects, never pyplot): run, monitor and comparison."""
from pinnsketch.plots.bench import bench_figure
from pinnsketch.plots.compare import comparison_figure
from pinnsketch.plots.monitor import monitor_figures
from pinnsketch.plots.run import curves_figure, solution_figure

__all__ = ["bench_figure", "comparison_figure", "curves_figure", "monitor_figures", "solution_figure"]
