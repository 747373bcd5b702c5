"""Session limits on PostgreSQL connections that cannot carry them as startup options.

The recipes' connections carry their limits (``statement_timeout`` and the
others: ``bankaccounts.timeouts``) as libpq's ``options`` startup parameter.
PgBouncer refuses that parameter, so behind it (``PGBOUNCER_POOL_MODE``) each
new connection gets them another way, by what ``for_new_connections`` returns:

- session pooling: each client connection is one server session, so the
  limits are set on it by SQL (``set_limits``);
- transaction pooling: each transaction may run on another server connection,
  so nothing is set on one: the limits must be the role's (or the database's),
  ``ALTER ROLE ... SET``, and each new connection checks that they are there
  (``check_role_limits``), refusing to serve otherwise, with the statements to
  run in its error.

Each works on a psycopg connection in autocommit (eventsourcing's) or not
(SQLAlchemy's, Django's), and leaves no transaction open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from psycopg.rows import tuple_row

from bankaccounts.config import ConfigurationError

logger = logging.getLogger(__name__)

Configure = Callable[[Any], None]


def set_limits(limits: dict[str, str]) -> Configure:
    """``limits`` for the connection's session."""

    def configure(connection: Any) -> None:
        with connection.cursor() as cursor:
            for name, value in limits.items():
                cursor.execute("SELECT set_config(%s, %s, false)", (name, value))
        _end_transaction(connection)

    return configure


def check_role_limits(limits: dict[str, str], role: str) -> Configure:
    """A check that the server connection has each of ``limits`` at all (from the
    role's or the database's settings): ``ConfigurationError`` if it has not."""

    def configure(connection: Any) -> None:
        with connection.cursor(row_factory=tuple_row) as cursor:
            unset = []
            for name in limits:
                cursor.execute("SELECT current_setting(%s)", (name,))
                row = cursor.fetchone()
                if row is None or row[0] == "0":
                    unset.append(name)
        _end_transaction(connection)
        if unset:
            statements = " ".join(f"ALTER ROLE {role} SET {name} = '{limits[name]}';" for name in unset)
            msg = (
                f"behind PgBouncer in transaction pooling, a connection cannot carry its own limits, and "
                f"the role has none for {', '.join(unset)}: run {statements}"
            )
            # A pool may take the error for a failed connection attempt, try again
            # later, and show its waiters only a timeout: so it is logged here.
            logger.error("%s", msg)
            raise ConfigurationError(msg)

    return configure


def for_new_connections(pool_mode: str, limits: dict[str, str], role: str) -> Configure:
    """What to run on each new connection behind PgBouncer in ``pool_mode``."""
    if pool_mode == "session":
        return set_limits(limits)
    if pool_mode == "transaction":
        return check_role_limits(limits, role or "the role")
    msg = f"PgBouncer's pool mode {pool_mode!r}: session or transaction"
    raise ConfigurationError(msg)


def _end_transaction(connection: Any) -> None:
    if not connection.autocommit:
        connection.commit()
