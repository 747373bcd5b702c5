from __future__ import annotations

from collections.abc import Iterator

import pytest

from bankaccounts.application import BankAccounts, construct_application
from bankaccounts.lifecycle import close_application

pytest_plugins = ["cookbook_testing.plugin"]


@pytest.fixture
def app(database_url: str) -> Iterator[BankAccounts]:
    """A fresh application on this test's database, closed afterwards."""
    with construct_application() as application:
        yield application


@pytest.fixture(autouse=True)
def _no_application_left_behind() -> Iterator[None]:
    yield
    close_application()
