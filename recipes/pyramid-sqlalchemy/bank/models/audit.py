"""An ordinary ORM row, written in the same transaction as the events."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bank.models.meta import Base


class AuditEntry(Base):
    """One row per successful command, however often it is sent (one per command id
    and action): proof that rows and events commit, or abort, together."""

    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("command_id", "action", name="audit_entry_once_per_command"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(36), index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))
    command_id: Mapped[str | None] = mapped_column(String(300))
