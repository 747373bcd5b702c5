"""One active process per runner, any number standing by: a lock held for the process's life.

A process takes its runner's lock before it builds the runner, and holds it
until it exits; another process started for the same runner stands by,
trying again every ``STANDBY_POLL_SECONDS``, and takes over when the lock is
free. The lock belongs to the process's connection (PostgreSQL) or open file
(SQLite), so the kernel or the server frees it when the process dies, SIGKILL
included: no lease to expire, no clean-up to forget.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a
  connection of its own, keyed by the runner's name: replicas on any host
  that reach the database agree. PostgreSQL frees it when the session ends: at
  once when the process dies (its socket closes), or when the server restarts.
  While active, the process checks that connection every time it looks at its
  runner; if it is gone, the lock may be someone else's, and the process exits 1.
- SQLite: ``flock`` on a file beside the database (``<file>.<name>.lock``):
  processes on the host that has the file, as SQLite itself requires.

``PROJECTION_LOCK=off`` skips the lock, for showing what two active processes
do (``tests/test_two_consumers.py``); never in a deployment.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

import psycopg

from bankaccounts.config import POSTGRES_CONNECTION_WAIT_SECONDS, DatabaseConfig

#: How often a standby tries the lock: most of the time a takeover waits.
STANDBY_POLL_SECONDS = 0.2


class StandbyLock(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if it is free; never wait for it."""

    def check(self) -> None:
        """Raise if the lock may have been lost (its connection is gone)."""

    def release(self) -> None:
        """Let it go (also what the process's death does)."""


class PostgresAdvisoryLock:
    def __init__(self, config: DatabaseConfig, name: str) -> None:
        # A signed 64-bit key from the name: the same for every replica, whatever its host.
        self.key = int.from_bytes(hashlib.sha256(f"projection:{name}".encode()).digest()[:8], "big", signed=True)
        self.connection = psycopg.connect(config.url, autocommit=True, connect_timeout=POSTGRES_CONNECTION_WAIT_SECONDS)

    def try_acquire(self) -> bool:
        row = self.connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        return bool(row and row[0])

    def check(self) -> None:
        self.connection.execute("SELECT 1")

    def release(self) -> None:
        self.connection.close()  # the session ends, and its advisory locks with it


class FileLock:
    def __init__(self, path: Path) -> None:
        self.file = path.open("a")

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def check(self) -> None:
        pass  # held by an open file of this process: only its end frees it

    def release(self) -> None:
        self.file.close()


class NoLock:
    def try_acquire(self) -> bool:
        return True

    def check(self) -> None:
        pass

    def release(self) -> None:
        pass


def standby_lock(name: str, environ: Mapping[str, str] | None = None) -> StandbyLock:
    """The lock of the runner ``name`` in the store ``DATABASE_URL`` names."""
    environ = os.environ if environ is None else environ
    if environ.get("PROJECTION_LOCK", "on").strip().lower() == "off":
        return NoLock()
    config = DatabaseConfig.from_env(environ)
    if config.store == "postgresql":
        return PostgresAdvisoryLock(config, name)
    assert config.sqlite_path is not None
    config.make_sqlite_folder()
    return FileLock(config.sqlite_path.with_name(f"{config.sqlite_path.name}.{name}.lock"))


def wait_for_lock(
    lock: StandbyLock,
    stop_requested: threading.Event,
    waiting: Callable[[str], AbstractContextManager[None]] = lambda _what: contextlib.nullcontext(),
) -> bool:
    """Try the lock until it is taken (True) or a stop is requested (False); each
    try ``with waiting(...)`` (``database_watchdog``: a database that hangs ends it)."""
    while not stop_requested.is_set():
        with waiting("a try of the lock"):
            if lock.try_acquire():
                return True
        stop_requested.wait(STANDBY_POLL_SECONDS)
    return False
