"""The test kit's databases: a copy of a prepared database is a database of its own."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bankaccounts.application import construct_application
from cookbook_testing.databases import copy_database, count_rows


def test_a_copy_holds_what_the_source_held_and_then_goes_its_own_way(
    make_database_url: Callable[[], str], events_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = make_database_url(), make_database_url()
    monkeypatch.setenv("DATABASE_URL", source)
    with construct_application() as app:
        app.open_account("Ada", "ada@example.com")
    copy_database(source, target)
    monkeypatch.setenv("DATABASE_URL", target)
    with construct_application() as app:
        app.open_account("Grace", "grace@example.com")
    assert count_rows(source, events_table) == 1
    assert count_rows(target, events_table) == 2  # the copy's own, and the new one
