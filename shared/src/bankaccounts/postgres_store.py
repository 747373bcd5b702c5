"""eventsourcing's PostgreSQL store, with a statement timeout.

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
"""

from __future__ import annotations

import eventsourcing.postgres
from eventsourcing.utils import Environment, EnvType

#: Milliseconds; unset or empty means no limit, as in eventsourcing.
POSTGRES_STATEMENT_TIMEOUT = "POSTGRES_STATEMENT_TIMEOUT"


# eventsourcing takes the one factory class a persistence module holds: the
# base is reached through its module, so that this module holds only this one.
class PostgresFactory(eventsourcing.postgres.PostgresFactory):
    store_name = "postgresql"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        milliseconds = (self.env.get(POSTGRES_STATEMENT_TIMEOUT) or "").strip()
        if milliseconds:
            # The pool opens no connection until the application first needs
            # one, so every connection it ever opens gets the limit.
            # (eventsourcing sets its password in these arguments the same way.)
            connect_arguments = self.datastore.pool.kwargs
            assert isinstance(connect_arguments, dict)
            connect_arguments["options"] = f"-c statement_timeout={int(milliseconds)}"
