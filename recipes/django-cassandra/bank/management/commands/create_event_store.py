"""``python manage.py create_event_store``: the keyspace and tables, once, before the servers start.

Cassandra's schema changes are not safe from several processes at once, so
the workers never make them (``CREATE_TABLE=n`` in ``config/cassandra.py``);
this command is the one process that does, as ``migrate`` would for SQL.
It is idempotent: run it on every deploy.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from bankaccounts.application import BankAccounts


class Command(BaseCommand):
    help = "Create the Cassandra keyspace and the event store's tables, if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        env = settings.EVENTSOURCING_ENV
        # A short-lived application whose only job is the schema: it
        # creates the tables when it is constructed, then closes its session.
        with BankAccounts(env={**env, "CREATE_TABLE": "y"}):
            pass
        self.stdout.write(f"Event store ready in keyspace {env['CASSANDRA_KEYSPACE']} on {env['CASSANDRA_HOSTS']}")
