"""Whether a run folder can take a run: a new one must be empty, a resumed one must match.

The saved ``config.yaml`` is read without requiring ``problem.type``: a run trained on a
problem object has none.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from pinnsketch.config import RunConfig, load_config
from pinnsketch.errors import ConfigError
from pinnsketch.runner.run_dir import RunDir

__all__ = ["BUDGET_KEYS", "SECOND_PHASE_KEYS", "check_folder", "check_resume_config", "saved_config"]

# The only keys that may change when a run is continued.
BUDGET_KEYS = ("adam_steps", "lbfgs_steps")
# The settings of the phase after Adam, free when a resume adds that phase.
SECOND_PHASE_KEYS = ("quasi_newton", "lbfgs_history", "lbfgs_tolerance_grad",
                     "lbfgs_tolerance_change", "max_hessian_mib")


def saved_config(folder: RunDir) -> RunConfig:
    """The configuration a run folder was trained with (its ``config.yaml``)."""
    if not folder.config_path.is_file():
        raise ConfigError(f"{folder.path}: no config.yaml (not a run folder)")
    return load_config(folder.config_path, require_type=False)


def check_folder(folder: RunDir, config: RunConfig, resume: str | Path | None) -> None:
    """Raise :class:`ConfigError` unless ``folder`` can take this run.

    A new run needs a folder without a run in it; a resumed one needs a checkpoint (a
    sequence-to-sequence run: its config, the windows hold the checkpoints) and a saved
    configuration equal to ``config`` except for the step budgets.
    """
    if resume is None:
        if folder.holds_run():
            raise ConfigError(f"--out {folder.path}: already holds a run (choose another "
                              f"folder, or continue it with --resume {folder.path})")
        return
    per_window = config.train.time_marching.networks == "per_window"
    if not (folder.config_path if per_window else folder.checkpoint_path).is_file():
        raise ConfigError(f"--resume {resume}: no "
                          f"{'config.yaml' if per_window else 'checkpoint.pt'} in that folder")
    check_resume_config(saved_config(folder), config)


def check_resume_config(saved: RunConfig, given: RunConfig) -> None:
    """Only ``train.adam_steps`` and ``train.lbfgs_steps`` may differ between the two; and
    when the saved run had no phase after Adam (``lbfgs_steps`` 0), that phase's settings
    (:data:`SECOND_PHASE_KEYS`, ``sampling.lbfgs_resample_every``) too: it is added."""
    adding = saved.train.lbfgs_steps == 0
    free = BUDGET_KEYS + (SECOND_PHASE_KEYS if adding else ())
    allowed = " and ".join(f"train.{key}" for key in BUDGET_KEYS) + (
        " (and the settings of the phase after Adam, which the run to resume did not have)"
        if adding else "")
    saved_train, given_train = (
        {k: v for k, v in dataclasses.asdict(c.train).items() if k not in free}
        for c in (saved, given))
    for key, value in saved_train.items():
        if given_train[key] != value:
            raise ConfigError(f"train.{key}: got {given_train[key]!r} but the run to resume "
                              f"used {value!r}; only {allowed} may change on resume")
    sampling = [c.sampling if not adding else dataclasses.replace(c.sampling,
                                                                   lbfgs_resample_every=0)
                for c in (saved, given)]
    if sampling[0] != sampling[1]:
        raise ConfigError(f"sampling: differs from the run to resume; only {allowed} may "
                          f"change on resume")
    for section in ("problem", "model", "monitor", "terms"):
        if getattr(saved, section) != getattr(given, section):
            raise ConfigError(f"{section}: differs from the run to resume; only {allowed} "
                              f"may change on resume")
