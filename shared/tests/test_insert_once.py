"""``insert_once``: a row once by its unique constraint, however often it is inserted, on the store under test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bankaccounts.config import DatabaseConfig
from bankaccounts.insert_once import insert_once


class Base(DeclarativeBase):
    pass


class Entry(Base):
    __tablename__ = "insert_once_entries"
    __table_args__ = (sa.UniqueConstraint("command_id", "action"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    command_id: Mapped[str | None] = mapped_column(sa.String(50))
    action: Mapped[str] = mapped_column(sa.String(20))


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = sa.create_engine(DatabaseConfig.from_url(database_url).sqlalchemy_url())
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def rows(session: Session) -> list[tuple[str | None, str]]:
    return [(entry.command_id, entry.action) for entry in session.scalars(sa.select(Entry).order_by(Entry.id))]


def test_a_row_inserted_again_is_not_added_and_the_transaction_goes_on(session: Session) -> None:
    insert_once(session, Entry, command_id="c1", action="deposit")
    insert_once(session, Entry, command_id="c1", action="deposit")  # a command sent again
    insert_once(session, Entry, command_id="c1", action="withdraw")  # the constraint is on both columns
    session.commit()
    insert_once(session, Entry, command_id="c1", action="deposit")  # again, after the commit
    session.commit()
    assert rows(session) == [("c1", "deposit"), ("c1", "withdraw")]


def test_rows_without_a_command_id_are_all_kept(session: Session) -> None:
    # NULLs are distinct in a unique constraint: rows that name no command are not deduplicated.
    insert_once(session, Entry, command_id=None, action="deposit")
    insert_once(session, Entry, command_id=None, action="deposit")
    session.commit()
    assert rows(session) == [(None, "deposit"), (None, "deposit")]
