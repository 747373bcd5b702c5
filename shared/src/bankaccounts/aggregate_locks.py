"""Writers of one account take turns instead of racing.

Optimistic concurrency alone is correct but not fair: when sixteen writers
load one account at once, one of them wins, fifteen conflict and retry after
a random pause, and the same race starts again. A writer can keep losing for
longer than its time budget and answer 409 although nothing was wrong with
its command. So a command takes a lock on each account it will change, in a
fixed order (no two commands can wait for each other), and only then reads
them. Whoever waits is served in turn, and the unique constraint of the
event store stays the safety net for writers that take no lock. (When the
lock costs round trips of its own, ``BankAccounts`` takes it only for
aggregates its writers have lately raced for: see ``ContendedAggregates``
and ``BankAccounts._run``.)

- ``ThreadLocks``: between the threads of one process (striped: a fixed
  number of locks, chosen by the account id's hash).
- ``PostgresAdvisoryLocks``: between processes and hosts sharing one
  PostgreSQL database, for applications on ``eventsourcing.postgres``: a
  transaction-level advisory lock, held on a connection from the
  application's pool while the command runs on another. PostgreSQL queues
  lock waiters in order, and ends the lock with the transaction, or the
  session, if the holder dies.
- ``TransactionAdvisoryLocks``: the same lock, taken in a transaction that
  the caller owns (a web request's SQLAlchemy session or Django atomic block)
  and released when that transaction ends.
- ``FileLocks``: between processes sharing one SQLite file, for applications
  on ``eventsourcing.sqlite``: an exclusive ``flock`` on a lock file in a
  folder beside the database file. SQLite lets one writer at a time into the
  file but only at the commit: without these, the worker processes of a
  Celery or uWSGI recipe race for a busy account, and under load a command
  could keep losing for its whole time budget.

Every wait is bounded by ``REQUEST_TIMEOUT`` (see ``bankaccounts.timeouts``):
a writer that cannot get its turn raises ``RequestTimeoutError`` (between
threads) or PostgreSQL's "canceling statement due to lock timeout", and both
answer 503, since a lock held that long means a writer or the database is stuck.

``AGGREGATE_LOCKS=off`` turns the locks off, to measure what they cost and
what they save (see the Performance page).
"""

from __future__ import annotations

import fcntl
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from bankaccounts.timeouts import RequestTimeoutError, request_timeout, server_timeout

AGGREGATE_LOCKS_ENV = "AGGREGATE_LOCKS"
#: Stripes of ``ThreadLocks``: accounts whose ids share a stripe take turns too.
THREAD_LOCK_STRIPES = 256
#: The SQL that takes one lock; ``%s`` is a signed 64-bit key (``advisory_key``).
ADVISORY_XACT_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s)"
#: psycopg's ``TransactionStatus.IDLE``: no transaction open on the connection.
IDLE = 0


class AggregateLocks(Protocol):
    def hold(self, aggregate_ids: Iterable[UUID]) -> AbstractContextManager[None]:
        """Wait for every one of these aggregates' locks; release them on leaving."""
        ...


#: How long an aggregate stays contended after the last write that raced for it or took its turn.
CONTENDED_SECONDS = 10.0
#: Entries ``ContendedAggregates`` keeps before it forgets the ones no longer contended.
CONTENDED_PRUNE_AT = 10_000


class ContendedAggregates:
    """The aggregates this process's writers have lately raced for, and when.

    A write conflict marks the aggregates of the command that lost; a write
    in turn keeps the mark fresh. Without either for ``CONTENDED_SECONDS``, an
    aggregate is quiet again. Reads and writes of the dictionary are atomic
    in CPython, and a stale answer costs only a lock or a race.
    """

    def __init__(self, seconds: float = CONTENDED_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._last: dict[UUID, float] = {}

    def mark(self, aggregate_ids: Iterable[UUID]) -> None:
        now = self.clock()
        for aggregate_id in aggregate_ids:
            self._last[aggregate_id] = now
        if len(self._last) > CONTENDED_PRUNE_AT:
            self._last = {key: at for key, at in list(self._last.items()) if now - at < self.seconds}

    def any(self, aggregate_ids: Iterable[UUID]) -> bool:
        now = self.clock()
        return any(now - self._last.get(aggregate_id, -math.inf) < self.seconds for aggregate_id in aggregate_ids)


def aggregate_locks_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """``AGGREGATE_LOCKS``: ``on`` (the default) or ``off``."""
    value = (environ if environ is not None else os.environ).get(AGGREGATE_LOCKS_ENV, "on").strip().lower()
    if value not in {"on", "off"}:
        msg = f"{AGGREGATE_LOCKS_ENV} must be 'on' or 'off', not {value!r}"
        raise ValueError(msg)
    return value == "on"


def advisory_key(aggregate_id: UUID) -> int:
    """A signed 64-bit key for PostgreSQL's advisory locks, from an aggregate id.

    Two ids that share a key (one chance in 2**64) only take turns needlessly.
    """
    return int.from_bytes(aggregate_id.bytes[:8], "big", signed=True)


def in_lock_order(aggregate_ids: Iterable[UUID]) -> list[int]:
    """Distinct keys, sorted: every writer takes its locks in this one order."""
    return sorted({advisory_key(aggregate_id) for aggregate_id in aggregate_ids})


class NoLocks:
    """Writers race; optimistic concurrency and retries sort them out."""

    def hold(self, aggregate_ids: Iterable[UUID]) -> AbstractContextManager[None]:
        return nullcontext()


class ThreadLocks:
    """Turns between the threads of this process."""

    def __init__(self, stripes: int = THREAD_LOCK_STRIPES) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def hold(self, aggregate_ids: Iterable[UUID]) -> Iterator[None]:
        wait = request_timeout()
        stripes = sorted({key % len(self._locks) for key in in_lock_order(aggregate_ids)})
        with ExitStack() as held:
            for stripe in stripes:
                lock = self._locks[stripe]
                if not lock.acquire(timeout=wait):
                    msg = f"waited {wait}s for another thread writing the same account"
                    raise RequestTimeoutError(msg)
                held.callback(lock.release)
            yield


#: ``FileLocks`` polls a lock another process holds: first after at most this many
#: seconds, then after twice as long each time, up to ``FILE_LOCK_MAX_PAUSE``
#: (SQLite's own busy handler waits 1 ms to 100 ms between its tries).
FILE_LOCK_FIRST_PAUSE = 0.001
FILE_LOCK_MAX_PAUSE = 0.02


class FileLocks:
    """Turns between every process on one SQLite file (``eventsourcing.sqlite``).

    Stripe ``n`` of an account is the file ``<database file>.locks/n``. Each
    ``hold`` opens its own descriptor: ``flock`` locks belong to an open file,
    so the applications and threads of one process take turns too, and a
    process that dies releases its locks with its files. ``flock`` cannot wait
    with a limit, so a waiter tries again after short random pauses, until
    ``REQUEST_TIMEOUT`` has passed: then ``RequestTimeoutError`` (a 503).
    """

    def __init__(self, database_file: str | os.PathLike[str], stripes: int = THREAD_LOCK_STRIPES) -> None:
        self.folder = Path(f"{os.fspath(database_file)}.locks")
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.stripes = stripes

    @contextmanager
    def hold(self, aggregate_ids: Iterable[UUID]) -> Iterator[None]:
        wait = request_timeout()
        deadline = time.monotonic() + wait
        with ExitStack() as held:
            for stripe in sorted({key % self.stripes for key in in_lock_order(aggregate_ids)}):
                descriptor = os.open(self.folder / str(stripe), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                held.callback(os.close, descriptor)  # closing the file releases its lock
                if not self._lock(descriptor, deadline):
                    msg = f"waited {wait}s for another process writing the same account"
                    raise RequestTimeoutError(msg)
            yield

    @staticmethod
    def _lock(descriptor: int, deadline: float) -> bool:
        pause = FILE_LOCK_FIRST_PAUSE
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                time.sleep(min(remaining, random.uniform(0, pause)))  # noqa: S311 - jitter, not cryptography
                pause = min(pause * 2, FILE_LOCK_MAX_PAUSE)
            else:
                return True


def sqlite_file(db_name: str) -> str | None:
    """The file an ``eventsourcing.sqlite`` database name points at; ``None`` for one in memory."""
    if not db_name or ":memory:" in db_name or "mode=memory" in db_name:
        return None
    if db_name.startswith("file:"):  # a URI: the path is between the scheme and any query
        return db_name.removeprefix("file:").partition("?")[0] or None
    return db_name


class PostgresAdvisoryLocks:
    """Turns between every process on one PostgreSQL database (``eventsourcing.postgres``).

    ``datastore`` is the application's ``PostgresDatastore``. Each command holds
    two of its pool's connections: the pool needs at least two.
    """

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore

    @contextmanager
    def hold(self, aggregate_ids: Iterable[UUID]) -> Iterator[None]:
        keys = in_lock_order(aggregate_ids)
        if not keys:  # a new aggregate: nobody else can be writing it
            yield
            return
        with self.datastore.get_connection() as connection:  # in autocommit mode: the pool's are
            try:
                connection.execute(take_locks_sql(keys, request_timeout(), server_timeout()))
                yield
            finally:
                # Nothing was written in this transaction: ending it only releases the locks.
                if not connection.closed and connection.info.transaction_status != IDLE:
                    connection.execute("ROLLBACK")


def take_locks_sql(keys: list[int], lock_timeout: int, idle_timeout: int) -> str:
    """One round trip: begin a transaction, bound its waits, take every lock in order.

    The pool's connections carry no session limits, so the transaction sets its
    own: how long to wait for a lock, and how long a holder that stopped (frozen,
    not dead) keeps it. Only integers are formatted into it.
    """
    limits = (
        f"set_config('lock_timeout', '{int(lock_timeout)}s', true), "
        f"set_config('idle_in_transaction_session_timeout', '{int(idle_timeout)}s', true)"
    )
    locks = [f"pg_advisory_xact_lock({int(key)})" for key in keys]
    return "; ".join(["BEGIN", f"SELECT {limits}, {locks[0]}", *(f"SELECT {lock}" for lock in locks[1:])])


class TransactionAdvisoryLocks:
    """The same PostgreSQL lock, in a transaction someone else owns.

    ``lock_key`` runs ``ADVISORY_XACT_LOCK_SQL`` with one key in that
    transaction (its connection's ``lock_timeout`` bounds the wait); the lock
    is released when the owner commits or rolls back, not on leaving ``hold``.
    """

    def __init__(self, lock_key: Callable[[int], object]) -> None:
        self.lock_key = lock_key

    @contextmanager
    def hold(self, aggregate_ids: Iterable[UUID]) -> Iterator[None]:
        for key in in_lock_order(aggregate_ids):
            self.lock_key(key)
        yield


class Combined:
    """Threads of this process take turns first, then take the database's lock."""

    def __init__(self, *locks: AggregateLocks) -> None:
        self.locks = locks

    @contextmanager
    def hold(self, aggregate_ids: Iterable[UUID]) -> Iterator[None]:
        ids = list(aggregate_ids)
        with ExitStack() as held:
            for locks in self.locks:
                held.enter_context(locks.hold(ids))
            yield


def locks_for(factory: object) -> AggregateLocks:
    """The locks an application on this infrastructure ``factory`` takes.

    - ``eventsourcing.postgres``: ``PostgresAdvisoryLocks`` (its pool must
      allow two connections).
    - ``eventsourcing_sqlalchemy`` on a scoped session that someone else
      commits (a web request's): ``TransactionAdvisoryLocks`` in that
      session, on PostgreSQL.
    - ``eventsourcing.sqlite`` on a file: ``FileLocks`` beside it.
    - a persistence module whose factory has ``aggregate_locks()`` (the Django
      recipe's event store): whatever that returns.
    - and in every case ``ThreadLocks`` first. Nothing else: SQLite through
      SQLAlchemy or Django commits after the command has returned (the
      request's transaction), when a file lock would be released already, and
      Cassandra has only lightweight transactions.
    """
    if not aggregate_locks_enabled():
        return NoLocks()
    database_locks: AggregateLocks | None = None
    datastore: Any = getattr(factory, "datastore", None)
    module = type(factory).__module__
    # By name, not isinstance: the SQLite recipes do not install psycopg, which eventsourcing.postgres imports.
    modules = {cls.__module__ for cls in type(factory).__mro__}
    if hasattr(factory, "aggregate_locks"):
        database_locks = factory.aggregate_locks()
    elif "eventsourcing.postgres" in modules and (datastore.pool.max_size or 0) >= 2:  # the lock's and the command's
        database_locks = PostgresAdvisoryLocks(datastore)
    elif "eventsourcing.sqlite" in modules and (database_file := sqlite_file(datastore.pool.db_name)):
        database_locks = FileLocks(database_file)
    elif module.startswith("eventsourcing_sqlalchemy") and getattr(datastore, "scoped_session", None) is not None:
        database_locks = TransactionAdvisoryLocks(session_lock(datastore.scoped_session))
    if database_locks is None:
        return ThreadLocks()
    return Combined(ThreadLocks(), database_locks)


def session_lock(session: Any) -> Callable[[int], None]:
    """Take one key's lock in a SQLAlchemy session's transaction, on PostgreSQL."""

    def lock_key(key: int) -> None:
        connection = session.connection()  # the session's transaction begins here, if it has not
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(ADVISORY_XACT_LOCK_SQL, (key,))

    return lock_key
