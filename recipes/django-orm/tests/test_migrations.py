"""The migrations in the repository create exactly the tables the models describe."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command


def test_the_models_have_no_change_without_a_migration(django_database: str) -> None:
    output = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=output, stderr=output)
    except SystemExit:
        pytest.fail(f"the models changed without a migration: python manage.py makemigrations\n{output.getvalue()}")
