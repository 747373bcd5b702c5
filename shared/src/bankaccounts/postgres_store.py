"""eventsourcing's PostgreSQL store, with a statement timeout, and behind PgBouncer.

``eventsourcing.postgres`` bounds how long it waits to connect
(``POSTGRES_CONNECT_TIMEOUT``), for its table lock (``POSTGRES_LOCK_TIMEOUT``)
and how long a session may idle in a transaction, but it has no setting for
how long one statement may run. This factory is eventsourcing's own with that
one addition: every connection its pool opens starts with PostgreSQL's
``statement_timeout`` (libpq's ``options``), so no statement runs longer
than ``REQUEST_TIMEOUT``. eventsourcing's recorders try a failed statement 10
times, so in a web worker the server's limit usually ends the request first
(503 either way); in a queue worker, which has no such limit, the ten tries
are the bound. ``bankaccounts.config`` selects it for PostgreSQL
``DATABASE_URL``\\ s and sets all four limits from ``REQUEST_TIMEOUT``.

Behind PgBouncer (``PGBOUNCER_POOL_MODE``), which refuses the ``options``
startup parameter:

- ``session``: each client session is one server session, so the limits are
  set on each new connection, by SQL, instead;
- ``transaction``: each transaction may run on another server connection, so
  the store keeps no state in a session: it prepares no statement (psycopg's
  ``prepare_threshold=None``, which also overrides eventsourcing's
  ``prepare=True``) and sets nothing on a connection. The limits must then be
  the role's own (``ALTER ROLE ... SET``), on every server connection
  PgBouncer opens: each new connection checks that they are set, and is
  refused (with the statements to run) if they are not.
"""

from __future__ import annotations

from typing import Any

import eventsourcing.postgres
from eventsourcing.utils import Environment, EnvType

from bankaccounts.config import ConfigurationError
from bankaccounts.session_limits import Configure, for_new_connections

#: Milliseconds; unset or empty means no limit, as in eventsourcing.
POSTGRES_STATEMENT_TIMEOUT = "POSTGRES_STATEMENT_TIMEOUT"
#: ``session`` or ``transaction``: the pool mode of the PgBouncer the store connects to.
POSTGRES_PGBOUNCER_POOL_MODE = "POSTGRES_PGBOUNCER_POOL_MODE"


# eventsourcing takes the one factory class a persistence module holds: the
# base is reached through its module, so that this module holds only this one.
class PostgresFactory(eventsourcing.postgres.PostgresFactory):
    store_name = "postgresql"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        milliseconds = int((self.env.get(POSTGRES_STATEMENT_TIMEOUT) or "").strip() or 0)
        mode = (self.env.get(POSTGRES_PGBOUNCER_POOL_MODE) or "").strip()
        # The pool opens no connection until the application first needs one, so
        # what is set here applies to every connection it ever opens. (eventsourcing
        # sets its password in these arguments the same way.)
        pool = self.datastore.pool
        connect_arguments = pool.kwargs
        assert isinstance(connect_arguments, dict)
        if not mode:
            if milliseconds:
                connect_arguments["options"] = f"-c statement_timeout={milliseconds}"
            return
        idle_milliseconds = int(self.datastore.idle_in_transaction_session_timeout * 1000)
        limits = {
            "statement_timeout": f"{milliseconds}ms",
            "idle_in_transaction_session_timeout": f"{idle_milliseconds}ms",
        }
        # Refuses a mode other than session or transaction.
        configure = for_new_connections(mode, limits, str(connect_arguments["user"] or ""))
        if mode == "transaction":
            connect_arguments["prepare_threshold"] = None
        # eventsourcing's own set-up (autocommit, then a SET of its idle limit)
        # is replaced: psycopg's pool keeps it as _configure, and no argument
        # replaces it once the datastore has made the pool.
        pool._configure = autocommit_then(configure)


def autocommit_then(configure: Configure) -> Configure:
    """Autocommit, as eventsourcing's connections are, then ``configure``; a connection
    it refuses is closed (psycopg's pool does not close one whose set-up failed)."""

    def autocommit_and_configure(connection: Any) -> None:
        connection.autocommit = True
        try:
            configure(connection)
        except ConfigurationError:
            connection.close()
            raise

    return autocommit_and_configure
