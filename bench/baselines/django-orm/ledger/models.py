"""What a Django user would keep instead of events: the balance in a row, and the recipe's audit row."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models


class Account(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    full_name = models.CharField(max_length=200)
    email_address = models.CharField(max_length=200)
    balance = models.BigIntegerField(default=0)
    overdraft_limit = models.BigIntegerField(default=0)
    is_closed = models.BooleanField(default=False)
    version = models.IntegerField(default=1)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "full_name": self.full_name,
            "email_address": self.email_address,
            "balance": self.balance,
            "overdraft_limit": self.overdraft_limit,
            "is_closed": self.is_closed,
            "version": self.version,
        }


class AuditEntry(models.Model):
    """The recipe writes this row with every command; so does its baseline."""

    action = models.CharField(max_length=32)
    account_id = models.UUIDField(db_index=True)
    recorded_at = models.DateTimeField(auto_now_add=True)
