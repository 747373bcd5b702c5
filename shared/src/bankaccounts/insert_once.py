"""Insert a row unless a unique constraint already has one like it: one statement.

A command's audit row is one per command id (and action), by a unique
constraint, not by a look first: two runs of one command at once would both
look and find no row. ``INSERT ... ON CONFLICT DO NOTHING`` (PostgreSQL, and
SQLite from 3.24) adds the row or leaves the one there; the later of two
inserts at once waits on the unique index for the first's transaction, then
adds nothing. It is one statement, where a look first and then an insert are
two round trips. SQLAlchemy is the SQLAlchemy recipes' dependency, not this
package's: import this module only where it is installed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.sql.expression import Executable


def insert_once(session: Session | scoped_session[Any], model: type[Any], **values: Any) -> None:
    """Insert ``model(**values)`` in ``session``'s transaction, or nothing if a unique constraint has its row."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Executable = postgresql.insert(model).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(model).values(**values).on_conflict_do_nothing()
    else:
        msg = f"insert_once knows ON CONFLICT on postgresql and sqlite, not on {dialect}"
        raise NotImplementedError(msg)
    session.execute(statement)
