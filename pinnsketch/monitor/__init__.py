"""The gradient monitor: per-layer, per-term gradient statistics in constant memory."""
from pinnsketch.monitor.gradients import linear_layers, term_gradients
from pinnsketch.monitor.history import MonitorHistory
from pinnsketch.monitor.monitor import SketchMonitor

__all__ = ["MonitorHistory", "SketchMonitor", "linear_layers", "term_gradients"]
