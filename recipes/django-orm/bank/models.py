"""An ordinary Django model, written in the same transaction as the events."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """One row per successful command: proof that ORM rows and events commit together."""

    action = models.CharField(max_length=32)
    account_id = models.UUIDField(db_index=True)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "bank_audit_entries"
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} {self.account_id} at {self.recorded_at:%Y-%m-%d %H:%M:%S}"
