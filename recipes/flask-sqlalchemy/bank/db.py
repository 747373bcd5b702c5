"""The SQLAlchemy session every request uses, for its own rows and for events.

Flask-SQLAlchemy gives each application context (each request) its own
session, through a ``scoped_session``, and removes it when the request ends:
rolled back, unless the view committed. ``eventsourcing_sqlalchemy`` is told
to use that same scoped session (see ``bank.accounts``), so the events a
request saves and the ORM rows it writes share one transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


def request_session() -> scoped_session:
    """The scoped session; ``eventsourcing_sqlalchemy`` finds it by this function's topic."""
    return db.session


class AuditEntry(db.Model):  # type: ignore[name-defined]  # db.Model is made at run time
    """An ordinary ORM row written in the same transaction as the events: one per
    command id and action, however often the command is sent."""

    __tablename__ = "audit_entries"
    __table_args__ = (db.UniqueConstraint("command_id", "action", name="audit_entry_once_per_command"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(db.String(32))
    account_id: Mapped[str] = mapped_column(db.String(36), index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))
    command_id: Mapped[str | None] = mapped_column(db.String(300))
