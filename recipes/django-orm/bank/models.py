"""An ordinary Django model, written in the same transaction as the events."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """One row per successful command: proof that ORM rows and events commit together.

    ``command_id`` is the command's id (a request's ``Idempotency-Key``, a
    task's id): one row per command and action, however often it is sent.
    """

    action = models.CharField(max_length=32)
    account_id = models.UUIDField(db_index=True)
    recorded_at = models.DateTimeField(default=timezone.now)
    command_id = models.CharField(max_length=300, null=True, blank=True)

    class Meta:
        db_table = "bank_audit_entries"
        verbose_name_plural = "audit entries"
        constraints = [
            models.UniqueConstraint(fields=["command_id", "action"], name="bank_audit_entry_once_per_command"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.account_id} at {self.recorded_at:%Y-%m-%d %H:%M:%S}"
