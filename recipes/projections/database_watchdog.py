"""A bound on the process's own waits for the database, for the day it hangs.

A database that hangs (a frozen host, a network that drops packets without a
reset) answers nothing, not even with its own ``statement_timeout``, and
psycopg waits for its answer for ever. The process would then neither follow
nor exit, and its supervisor would see it running. So the main thread says
when it waits for the database (``waiting``), and a watchdog thread ends the
process with status 1 if one wait lasts ``seconds``: by ``os._exit``, since
the runner's threads may be stuck in the same waits and would never join.
Its supervisor restarts it, and the restart resumes from the committed
position: the database rolls back whatever was not committed, so nothing is
lost or applied twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

logger = logging.getLogger("projection")


class DatabaseWatchdog:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._began: float | None = None
        self._what = ""
        threading.Thread(target=self._watch, name="database-watchdog", daemon=True).start()

    @contextlib.contextmanager
    def waiting(self, what: str) -> Iterator[None]:
        """Around a wait for the database, in the main thread: ``what`` it is, for the log."""
        self.begin(what)
        try:
            yield
        finally:
            with self._lock:
                self._began = None

    def begin(self, what: str) -> None:
        """A wait from now on: until ``waiting`` ends it, or else until the process exits (its stop)."""
        with self._lock:
            self._began, self._what = time.monotonic(), what

    def _watch(self) -> None:
        while True:
            time.sleep(min(0.5, self.seconds / 4))
            with self._lock:
                began, what = self._began, self._what
            if began is not None and time.monotonic() - began >= self.seconds:
                logger.error("the database did not answer (%s) for %.0f s: exiting 1", what, self.seconds)
                logging.shutdown()  # flush the log: os._exit flushes nothing
                os._exit(1)
