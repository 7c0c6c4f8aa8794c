"""A job run now and then every so many seconds on a daemon thread (the IBIC follow-up
proposals and the daily fall-risk scoring). A round that fails is logged and the next one
retries: one bad round must not end the schedule."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """`job` at start and then every `every_s` seconds until `stop()`."""

    def __init__(self, name: str, job: Callable[[], object], every_s: float, *,
                 failed: str, join_s: float = 30.0) -> None:
        self.name = name
        self.job = job
        self.every_s = every_s
        self.failed = failed  # what the log says when a round raises
        self.join_s = join_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run the first round now, on the schedule's own thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.job()
            except Exception:
                log.exception(self.failed)
            if self._stop.wait(self.every_s):
                return

    def stop(self) -> None:
        """Stop the schedule, waiting up to `join_s` for a round in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_s)
