"""Ctrl-C between steps: the first press asks the schedule to stop after the current step."""
from __future__ import annotations

import logging
import signal
import threading

__all__ = ["GracefulInterrupt"]

log = logging.getLogger(__name__)


class GracefulInterrupt:
    """First Ctrl-C sets ``requested`` (checked between steps); a second one interrupts at once.

    A context manager; outside the main thread (where signals cannot be caught) it does nothing.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)
        log.warning("interrupt: finishing the current step (or L-BFGS chunk), then saving a "
                    "checkpoint; press Ctrl-C again to stop at once")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
