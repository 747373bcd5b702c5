"""Production settings from the environment: ``manage.py check --deploy``, and clear refusals."""

from __future__ import annotations

import pytest

from cookbook_testing.django_checks import DjangoSettingsChecks


class TestSettings(DjangoSettingsChecks):
    """The test kit's Django checks with this test's database, and the database settings' refusals."""

    store_variables = ("DATABASE_URL",)

    malformed_store_settings = [
        ({"DJANGO_CONN_MAX_AGE": "-1"}, "DJANGO_CONN_MAX_AGE must not be negative"),
        ({"DATABASE_URL": "sqlite:///:memory:"}, "in-memory SQLite database"),
        ({"DATABASE_URL": "mysql://bank@localhost/bank"}, "unsupported scheme 'mysql'"),
        ({"DATABASE_URL": "sqlite:///var/pooled.sqlite3", "DJANGO_DB_POOL": "1"}, "DJANGO_DB_POOL=1 needs PostgreSQL"),
        ({"DJANGO_DB_POOL": "many"}, "DJANGO_DB_POOL must be 1 or 0"),
        ({"TASK_QUEUE": "dramatiq"}, "TASK_QUEUE must be celery or rq"),
    ]

    @pytest.fixture
    def store_settings(self, database_url: str) -> dict[str, str]:
        return {"DATABASE_URL": database_url}
