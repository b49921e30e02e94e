"""Stall diagnosis from a monitor's history: rules, findings and the Markdown report.

It takes data (a :class:`~pinnsketch.monitor.MonitorHistory`) and the loss weights as
arguments and reads no files; :mod:`pinnsketch.runner.diagnosis` writes the report.
"""
from pinnsketch.diagnosis.diagnose import diagnose
from pinnsketch.diagnosis.findings import SOURCES, TITLES, Finding, Thresholds
from pinnsketch.diagnosis.report import render_report, report_data

__all__ = ["SOURCES", "TITLES", "Finding", "Thresholds", "diagnose", "render_report", "report_data"]
