"""eventsourcing's SQLite store, which names itself and makes its file's folder.

SQLite creates a database file on first use, but not the folder it goes in:
the default ``var/bankaccounts.sqlite3`` of a fresh checkout has none. This
factory is eventsourcing's own, creating that folder when it is constructed
(in the process that will use the file, never when a setting is parsed).
``bankaccounts.config`` selects it for SQLite ``DATABASE_URL``\\ s.
"""

from __future__ import annotations

from pathlib import Path

import eventsourcing.sqlite
from eventsourcing.persistence import Environment, EnvType


# eventsourcing takes the one factory class a persistence module holds: the
# base is reached through its module, so that this module holds only this one.
class SQLiteFactory(eventsourcing.sqlite.SQLiteFactory):
    store_name = "sqlite"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        name = self.env.get(self.SQLITE_DBNAME) or ""
        if name != ":memory:" and not name.startswith("file:"):
            Path(name).parent.mkdir(parents=True, exist_ok=True)
