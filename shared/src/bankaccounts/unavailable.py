"""Whether an error means the store is unavailable just now (a 503, not a 500).

Nothing here knows the bank-accounts example: a project keeps this module as it
is (a test checks that it imports nothing from the example).
"""

from __future__ import annotations

from collections.abc import Iterator

#: Errors that mean the store cannot be reached, or cannot answer in time, just
#: now: a connection refused or cut, a pool with no connection to give, a
#: statement or lock timeout, SQLite's write lock held too long, a Cassandra
#: cluster with too few replicas. Named, not imported: each recipe installs only
#: its own drivers. Frameworks and stores raise their own errors *from* these,
#: so the whole chain of causes is looked at.
UNAVAILABLE_ERRORS = frozenset(
    {
        "psycopg.OperationalError",  # and its subclasses: QueryCanceled, LockNotAvailable, PoolTimeout...
        "psycopg.InterfaceError",  # "the connection is closed"
        "sqlalchemy.exc.TimeoutError",  # the engine's pool had no connection to give
        "cassandra.cluster.NoHostAvailable",
        "cassandra.OperationTimedOut",
        "cassandra.Unavailable",
        "cassandra.ReadTimeout",
        "cassandra.WriteTimeout",
        "eventsourcing_cassandra.recorders.NotificationLogBusyError",  # a commit that ran out of time
        "bankaccounts.timeouts.RequestTimeoutError",  # the server's limit for the request ran out
    }
)
#: SQLite says "operational error" for a missing table too; only these are about availability.
SQLITE_UNAVAILABLE_MESSAGES = ("database is locked", "unable to open database file", "disk I/O error")
#: Of those, the errors that mean no connection to the store could be made at all: not
#: a lock held, a statement too slow or a race lost, which another try a moment later
#: may win, but a server that refused or did not answer for the whole of the wait.
NO_CONNECTION_ERRORS = frozenset({"psycopg_pool.PoolTimeout", "cassandra.cluster.NoHostAvailable"})


def _chain(error: BaseException) -> Iterator[tuple[BaseException, str]]:
    """``error`` and each error it was raised from, each with the names of its classes."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for cls in type(current).__mro__:
            yield current, f"{cls.__module__}.{cls.__qualname__}"
        current = current.__cause__ or current.__context__


def store_unavailable(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, says the store is unavailable just now."""
    for current, name in _chain(error):
        if name in UNAVAILABLE_ERRORS:
            return True
        if name == "sqlite3.OperationalError" and str(current).startswith(SQLITE_UNAVAILABLE_MESSAGES):
            return True
    return False


def no_connection(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, says no connection to the store could be made."""
    return any(name in NO_CONNECTION_ERRORS for _, name in _chain(error))
