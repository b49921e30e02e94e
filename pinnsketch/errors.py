"""The exceptions a user of pinnsketch can meet; this module imports nothing of pinnsketch."""
from __future__ import annotations

import difflib
from typing import Iterable

__all__ = ["ConfigError", "NonFiniteLoss", "RunInterrupted", "suggest"]


def suggest(key: str, allowed: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest allowed spelling of ``key``, or ``""``."""
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


class ConfigError(ValueError):
    """A configuration value, a problem definition or a run folder is unusable; the message
    is one line fit for a user (the CLI prints it and exits with status 2)."""


class NonFiniteLoss(RuntimeError):
    """A loss term became NaN or infinite; carries the step and the term."""

    def __init__(self, step: int, term: str, value: float):
        super().__init__(f"non-finite loss at step {step}: term '{term}' = {value}")
        self.step, self.term, self.value = step, term, value


class RunInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C.

    Attributes:
        folder: the run folder (it may not exist yet if the interrupt came first).
        checkpoint_saved: whether a checkpoint of the last complete step was saved.
        step: the step reached.
    """

    def __init__(self, folder, checkpoint_saved: bool, step: int):
        super().__init__(f"interrupted at step {step}")
        self.folder, self.checkpoint_saved, self.step = folder, checkpoint_saved, step
