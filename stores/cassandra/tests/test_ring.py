"""The store on a ring of three nodes (127.0.0.1-3): replication factor 3, writes and
reads at QUORUM, lightweight transactions at SERIAL. A node lost (SIGKILL) and
brought back loses no acknowledged event and duplicates none; with two nodes down a
write fails within its bound and leaves nothing a reader sees.

The ring is started once for the session (``cassandra_testing.plugin.cassandra_ring``);
each test's keyspace (``ring_store_env``) has every node running again after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from uuid import UUID

import pytest

from bankaccounts.application import BankAccounts
from bankaccounts.web import store_unavailable
from cassandra_testing.node import CassandraNode, CassandraRing
from cassandra_testing.ring_checks import assert_log_is_the_events

# Not requires_local_node: the ring is always started here, whatever CASSANDRA_HOSTS names.
pytestmark = pytest.mark.ring

ACCOUNTS = 4
DEPOSITS_EACH_WAY = 40
#: Seconds a write may take to fail with two of three replicas gone.
FAILURE_BOUND = 30.0


@pytest.fixture
def make_app(ring_store_env: dict[str, str]) -> Iterator[Callable[[], BankAccounts]]:
    apps: list[BankAccounts] = []

    def make() -> BankAccounts:
        apps.append(app := BankAccounts(env=ring_store_env))
        return app

    yield make
    for app in apps:
        app.close()


def deposit_until_acknowledged(app: BankAccounts, account_id: UUID, command_id: str, tries: int = 20) -> int:
    """Deposit 1 cent with ``command_id``, sent again after the store was unavailable (as a
    client resends with its key), a bounded number of times; how many tries failed."""
    for failed in range(tries):
        try:
            app.deposit(account_id, 1, command_id=command_id)
            return failed
        except Exception as error:
            if not store_unavailable(error):
                raise
            time.sleep(0.2)
    msg = f"deposit {command_id} not acknowledged in {tries} tries"
    raise AssertionError(msg)


def test_a_node_lost_and_brought_back_loses_no_acknowledged_event(
    cassandra_ring: CassandraRing, make_app: Callable[[], BankAccounts]
) -> None:
    app = make_app()
    accounts = [app.open_account(f"Holder {n}", f"holder{n}@example.com").id for n in range(ACCOUNTS)]
    lost: CassandraNode = cassandra_ring.nodes[2]
    failed_tries = []
    for phase in ("before", "while lost", "after"):
        if phase == "while lost":
            lost.kill()
        if phase == "after":
            cassandra_ring.bring_back()
        for number in range(DEPOSITS_EACH_WAY):
            command_id = f"{phase}-{number}"
            failed_tries.append(deposit_until_acknowledged(app, accounts[number % ACCOUNTS], command_id))
    print(f"ring, a node lost: {sum(failed_tries)} failed tries of {len(failed_tries)} deposits")
    reader = make_app()  # a new session, reading at QUORUM
    acknowledged = 3 * DEPOSITS_EACH_WAY // ACCOUNTS
    assert [reader.get_account(account_id).balance for account_id in accounts] == [acknowledged] * ACCOUNTS
    assert_log_is_the_events(reader, accounts)


def test_with_two_nodes_down_a_write_fails_in_time_and_leaves_nothing(
    cassandra_ring: CassandraRing, make_app: Callable[[], BankAccounts]
) -> None:
    app = make_app()
    account_id = app.open_account("Ada", "ada@example.com").id
    app.deposit(account_id, 100, command_id="first")
    for node in cassandra_ring.nodes[1:]:
        node.kill()
    started = time.monotonic()
    with pytest.raises(Exception) as failure:  # which one: checked below
        app.deposit(account_id, 1, command_id="second")
    took = time.monotonic() - started
    print(f"ring, two nodes down: the write failed after {took:.1f} s with {failure.value!r}")
    assert store_unavailable(failure.value), failure.value
    assert took < FAILURE_BOUND
    cassandra_ring.bring_back()
    reader = make_app()
    assert reader.get_account(account_id).balance == 100
    assert_log_is_the_events(reader, [account_id])
    reader.deposit(account_id, 1, command_id="second")  # sent again, once the ring is back
    assert reader.get_account(account_id).balance == 101
