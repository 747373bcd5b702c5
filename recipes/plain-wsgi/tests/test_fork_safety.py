"""Why the application is constructed after the fork: the proof, on PostgreSQL.

The same load runs against two servers built from the same WSGI callable: one
whose workers each construct their own application after the fork (the
recipe), one whose application was built in the master and inherited by
every worker (the anti-pattern). The first must serve every request; the
second must not, or this test has failed to show the hazard.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cookbook_testing.databases import server_backends
from cookbook_testing.http import HTTPClient
from cookbook_testing.servers import ServerProcess
from cookbook_testing.standalone import applications_by_pid

pytestmark = pytest.mark.requires_postgresql

ROUND = 16  # concurrent requests per round, one per client thread
ROUNDS = 5  # the load both servers get: 80 account openings
MAX_ROUNDS = 25  # the anti-pattern gets more, up to 400, until it shows a failure
# How long a request may go unanswered before it counts as failed. An opening takes
# milliseconds; the anti-pattern's workers hang on replies another worker read, and
# a request that reaches no free worker waits out the connect and then the read.
TIMEOUT = 5.0
ANTIPATTERN_TIMEOUT = 1.0
ANTIPATTERN_ARGS = {
    "uwsgi": ["--ini", "tests/antipattern/uwsgi.ini"],
    "gunicorn": ["-c", "tests/antipattern/gunicorn.conf.py"],
}


def open_accounts(server: ServerProcess, rounds: int, timeout: float = TIMEOUT) -> list[object]:
    """Rounds of 16 concurrent account openings; each outcome is a status or an error name."""
    # A bounded wait: a worker that inherited a shared connection may wait forever
    # for a reply that another worker has already read.
    client = HTTPClient("127.0.0.1", server.port, timeout=timeout)

    def open_one(number: int) -> object:
        try:
            body = {"full_name": f"Client {number}", "email_address": "c@example.com"}
            return client.post("/accounts", json=body).status

        except OSError as error:  # reset, refused, or timed out
            return type(error).__name__

    with ThreadPoolExecutor(max_workers=ROUND) as pool:
        return list(pool.map(open_one, range(rounds * ROUND)))


def failures(outcomes: list[object]) -> list[object]:
    return [outcome for outcome in outcomes if outcome != 201]


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
        names = {name for _, name in server_backends(database_url) if name.startswith("bankaccounts-")}
        assert names == {f"bankaccounts-{server.pid}"}
        outcomes = open_accounts(server, ROUNDS, ANTIPATTERN_TIMEOUT)
        print(f"{kind}, constructed before fork: {len(failures(outcomes))} of {len(outcomes)} requests failed")
        for _ in range(ROUNDS, MAX_ROUNDS):  # bounded: never let luck decide
            if failures(outcomes):
                break
            outcomes += open_accounts(server, 1, ANTIPATTERN_TIMEOUT)
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
        applications_by_pid(server)
        names = {name for _, name in server_backends(database_url) if name.startswith("bankaccounts-")}
        workers = server.worker_pids()
        assert names == {f"bankaccounts-{pid}" for pid in workers}
        assert f"bankaccounts-{server.pid}" not in names
