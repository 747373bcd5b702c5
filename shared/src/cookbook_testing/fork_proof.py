"""The load of the fork-safety proofs: the same account openings against a recipe's server
and against its anti-pattern (an application built in the master and inherited by every
worker), which must fail some of them, or the proof has failed to show the hazard."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from cookbook_testing.databases import server_backends
from cookbook_testing.http import HTTPClient
from cookbook_testing.servers import ServerProcess
from cookbook_testing.standalone import applications_by_pid

__all__ = [
    "ANTIPATTERN_TIMEOUT",
    "MAX_ROUNDS",
    "ROUNDS",
    "TIMEOUT",
    "assert_each_worker_has_its_own_connections",
    "failures",
    "open_accounts",
    "open_until_one_fails",
    "session_labels",
]

ROUND = 16  # concurrent requests per round, one per client thread
ROUNDS = 5  # the load both servers get: 80 account openings
MAX_ROUNDS = 25  # the anti-pattern gets more, up to 400, until it shows a failure
# How long a request may go unanswered before it counts as failed. An opening takes
# milliseconds; the anti-pattern's workers hang on replies another worker read, and
# a request that reaches no free worker waits out the connect and then the read.
TIMEOUT = 5.0
ANTIPATTERN_TIMEOUT = 1.0


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


def open_until_one_fails(server: ServerProcess, outcomes: list[object]) -> list[object]:
    """More rounds against the anti-pattern, up to ``MAX_ROUNDS`` in all, until one fails:
    never let luck decide."""
    for _ in range(ROUNDS, MAX_ROUNDS):
        if failures(outcomes):
            break
        outcomes = outcomes + open_accounts(server, 1, ANTIPATTERN_TIMEOUT)
    return outcomes


def session_labels(database_url: str) -> set[str]:
    """The labels of the application's sessions in the database: ``bankaccounts-<pid>``
    (``application_name``), one per process that opened a connection."""
    return {name for _, name in server_backends(database_url) if name.startswith("bankaccounts-")}


def assert_each_worker_has_its_own_connections(server: ServerProcess, database_url: str) -> None:
    """Once every worker has served, the database's sessions are labelled with the workers'
    pids, and none with the master's."""
    applications_by_pid(server)
    labels = session_labels(database_url)
    assert labels == {f"bankaccounts-{pid}" for pid in server.worker_pids()}
    assert f"bankaccounts-{server.pid}" not in labels
