from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment
from projection_process import ProjectionProcess

from account_views import AccountViewsRecorder
from bankaccounts.application import BankAccounts, construct_application
from cookbook_testing.workers import check_logs
from large_withdrawals import LargeWithdrawals
from run_projection import projection_env, view_class

pytest_plugins = ["cookbook_testing.plugin"]


@pytest.fixture
def application(database_url: str) -> Iterator[BankAccounts]:
    """The shared application on this test's database, in the test process: the writer."""
    with construct_application() as app:
        yield app


@contextlib.contextmanager
def read_view(database_url: str) -> Iterator[AccountViewsRecorder]:
    """The view's tables in ``database_url``, read with the recipe's own recorder."""
    factory = InfrastructureFactory[AccountViewsRecorder].construct(
        env=Environment("AccountViews", projection_env({"DATABASE_URL": database_url}))
    )
    try:
        yield factory.tracking_recorder(view_class({"DATABASE_URL": database_url}))
    finally:
        factory.close()


@pytest.fixture
def view(database_url: str) -> Iterator[AccountViewsRecorder]:
    """The view of this test's database, read from the test process."""
    with read_view(database_url) as recorder:
        yield recorder


@pytest.fixture
def alerts(database_url: str) -> Iterator[LargeWithdrawals]:
    """The process application's events and position, read from the test process."""
    with LargeWithdrawals(projection_env({"DATABASE_URL": database_url})) as application:
        yield application


@pytest.fixture
def start_projection(
    database_url: str, recipe_dir: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ProjectionProcess]]:
    """Start ``python run_projection.py`` on this test's database (or ``database_url=``);
    every one started is killed at the test's end, and its log checked for tracebacks."""
    processes: list[ProjectionProcess] = []

    def start(
        *,
        which: str = "views",
        database_url: str = database_url,
        extra_env: dict[str, str] | None = None,
        standby: bool = False,
        timeout: float = 60,
    ) -> ProjectionProcess:
        """``standby``: return once it stands by (default: once it follows)."""
        process = ProjectionProcess(recipe_dir, {"DATABASE_URL": database_url, **(extra_env or {})}, which)
        processes.append(process)
        return process.start(timeout=timeout, until=process.is_standing_by if standby else None)

    yield start
    for process in processes:
        process.kill()
    check_logs(request, processes)
