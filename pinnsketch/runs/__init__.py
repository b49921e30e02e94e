"""Run folders: the only code that reads or writes one (train, resume, reopen, figures and
the monitor's report)."""
from pinnsketch.runs.diagnosis import diagnose_run, write_report
from pinnsketch.runs.run import Run, load_run
from pinnsketch.runs.run_dir import RunDir
from pinnsketch.runs.session import as_config, train

__all__ = ["Run", "RunDir", "as_config", "diagnose_run", "load_run", "train", "write_report"]
