"""``python manage.py create_ledger``: the keyspace and table, once, before the servers start."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ledger.accounts import create_schema


class Command(BaseCommand):
    help = "Create the Cassandra keyspace and the accounts table, if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        create_schema()
        self.stdout.write("Ledger table ready")
