"""Running and recording: train sessions and the run folder, the only code that reads or
writes one (train, resume, reopen, figures and the monitor's report)."""
from pinnsketch.runner.diagnosis import diagnose_run, write_report
from pinnsketch.runner.run import Run, load_run
from pinnsketch.runner.run_dir import RunDir
from pinnsketch.runner.session import as_config, train

__all__ = ["Run", "RunDir", "as_config", "diagnose_run", "load_run", "train", "write_report"]
