"""Why the application is constructed after the fork: the proof, on PostgreSQL.

The same load runs against two servers built from the same WSGI callable: one
whose workers each construct their own application after the fork (the
recipe), one whose application was built in the master and inherited by
every worker (the anti-pattern). The first must serve every request; the
second must not, or this test has failed to show the hazard.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cookbook_testing.fork_proof import (
    ANTIPATTERN_TIMEOUT,
    ROUNDS,
    assert_each_worker_has_its_own_connections,
    failures,
    open_accounts,
    open_until_one_fails,
    session_labels,
)
from cookbook_testing.servers import ServerProcess

pytestmark = pytest.mark.requires_postgresql

ANTIPATTERN_ARGS = {
    "uwsgi": ["--ini", "tests/antipattern/uwsgi.ini"],
    "gunicorn": ["-c", "tests/antipattern/gunicorn.conf.py"],
}


@pytest.mark.parametrize("kind", ["uwsgi", "gunicorn"])
def test_constructed_after_fork_every_request_succeeds(
    kind: str, recipe_dir: Path, make_database_url: Callable[[], str]
) -> None:
    with ServerProcess(kind, recipe_dir, env={"DATABASE_URL": make_database_url()}) as server:
        outcomes = open_accounts(server, ROUNDS)
    print(f"{kind}, constructed after fork: {len(failures(outcomes))} of {len(outcomes)} requests failed")
    assert failures(outcomes) == []


@pytest.mark.parametrize("kind", ["uwsgi", "gunicorn"])
def test_constructed_before_fork_requests_fail(
    kind: str, recipe_dir: Path, make_database_url: Callable[[], str]
) -> None:
    database_url = make_database_url()
    with ServerProcess(kind, recipe_dir, env={"DATABASE_URL": database_url}, args=ANTIPATTERN_ARGS[kind]) as server:
        # Before any request, the one connection is the master's, which every worker now holds.
        assert session_labels(database_url) == {f"bankaccounts-{server.pid}"}
        outcomes = open_accounts(server, ROUNDS, ANTIPATTERN_TIMEOUT)
        print(f"{kind}, constructed before fork: {len(failures(outcomes))} of {len(outcomes)} requests failed")
        outcomes = open_until_one_fails(server, outcomes)  # bounded: never let luck decide
        # Its workers may wait for ever on the connection they share: a graceful stop
        # would wait for them until its bound, then kill them anyway.
        server.kill()
    assert failures(outcomes), f"the anti-pattern served all {len(outcomes)} requests: it no longer shows the hazard"
    print(f"{kind}, constructed before fork: failures seen: {sorted(set(map(str, failures(outcomes))))}")


@pytest.mark.parametrize("kind", ["uwsgi", "gunicorn"])
def test_each_worker_has_its_own_database_connections(
    kind: str, recipe_dir: Path, make_database_url: Callable[[], str]
) -> None:
    database_url = make_database_url()
    with ServerProcess(kind, recipe_dir, env={"DATABASE_URL": database_url}) as server:
        assert_each_worker_has_its_own_connections(server, database_url)
