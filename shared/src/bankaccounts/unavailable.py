"""Whether an error means the store is unavailable just now (a 503, not a 500).

Nothing here knows the bank-accounts example: a project keeps this module as it
is (a test checks that it imports nothing from the example).
"""

from __future__ import annotations

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


def store_unavailable(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, says the store is unavailable just now."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for cls in type(current).__mro__:
            name = f"{cls.__module__}.{cls.__qualname__}"
            if name in UNAVAILABLE_ERRORS:
                return True
            if name == "sqlite3.OperationalError" and str(current).startswith(SQLITE_UNAVAILABLE_MESSAGES):
                return True
        current = current.__cause__ or current.__context__
    return False
