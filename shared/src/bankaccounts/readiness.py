"""``GET /ready``: can this worker reach its store right now?

``/health`` is a liveness check: it answers from the process alone, so a
process manager restarts a worker only when the worker itself is broken.
``/ready`` is a readiness check: it asks the store a trivial question and
answers 503 if no answer comes within a second, so a load balancer or an
orchestrator sends no traffic to a worker that cannot serve it, and sends it
again as soon as the store is back. (Restarting workers because the database
is down would not bring the database back.)

The question is asked in a helper thread, and the request waits for it at most
``READY_TIMEOUT_SECONDS``: a database that hangs (accepts connections, answers
nothing) makes ``/ready`` say so on time instead of hanging too. While that
question is still unanswered, later checks answer 503 at once rather than
pile up more threads and connections behind it.
"""

from __future__ import annotations

import concurrent.futures
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from bankaccounts.config import DatabaseConfig

#: How long ``/ready`` waits for the store's answer.
READY_TIMEOUT_SECONDS = 1.0


class ReadinessProbe:
    """Asks ``question`` (a trivial query) in a helper thread; waits at most ``timeout``."""

    def __init__(self, question: Callable[[], object], timeout: float = READY_TIMEOUT_SECONDS) -> None:
        self.question = question
        self.timeout = timeout
        self._lock = threading.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._owner_pid = 0
        self._pending: concurrent.futures.Future[object] | None = None

    def problem(self) -> str | None:
        """None if the store answered in time; otherwise what went wrong, for the 503's body."""
        with self._lock:
            if self._pending is not None and not self._pending.done():
                return "the database has not answered the previous readiness check yet"
            self._pending = self._helper().submit(self.question)
            pending = self._pending
        try:
            pending.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            return f"the database did not answer within {self.timeout:g}s"
        except Exception as error:  # any failure of the store means "not ready"
            return f"the database is unavailable ({type(error).__name__})"
        return None

    def _helper(self) -> concurrent.futures.ThreadPoolExecutor:
        # Threads do not survive a fork: each worker process starts its own, on first use.
        if self._executor is None or self._owner_pid != os.getpid():
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ready")
            self._owner_pid = os.getpid()
            self._pending = None
        return self._executor


def sql_question(database_url: str, timeout: float = READY_TIMEOUT_SECONDS) -> Callable[[], object]:
    """A trivial query on a fresh connection to the SQL database ``database_url`` names.

    A connection of its own, not one from the application's pool, so that the
    answer says whether the database can be reached now, and a probe never
    holds a connection a request needs.
    """
    config = DatabaseConfig.from_url(database_url)
    if config.store == "sqlite":
        path = config.sqlite_path

        def ask_sqlite() -> object:
            # mode=rw: a missing file is not a database that is ready (it would be created).
            with sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=timeout) as connection:
                return connection.execute("SELECT count(*) FROM sqlite_master").fetchone()

        return ask_sqlite

    def ask_postgresql() -> object:
        import psycopg  # only where the store is PostgreSQL

        # libpq's connect_timeout counts whole seconds, at least 2.
        with psycopg.connect(config.url, connect_timeout=2, autocommit=True) as connection:
            return connection.execute("SELECT 1").fetchone()

    return ask_postgresql


def ready_json(problem: str | None, store: str) -> tuple[int, dict[str, Any]]:
    """``/ready``'s status and body: 200 ``{"status": "ready", "store"}``, or 503 ``{"error"}``."""
    if problem is None:
        return 200, {"status": "ready", "store": store}
    return 503, {"error": f"not ready: {problem}"}


_database_probes: dict[str, ReadinessProbe] = {}


def database_ready(database_url: str | None = None) -> tuple[int, dict[str, Any]]:
    """``/ready`` for a SQL store: ``DATABASE_URL``'s database (the default) answers, or not."""
    url = os.environ.get("DATABASE_URL", "") if database_url is None else database_url
    probe = _database_probes.get(url)
    if probe is None:
        probe = _database_probes.setdefault(url, ReadinessProbe(sql_question(url)))
    return ready_json(probe.problem(), DatabaseConfig.from_url(url).store)
