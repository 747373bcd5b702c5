"""A Cassandra recipe's server on a ring of three nodes, under load: subclass
``RingChecks`` in the recipe's tests (they run with ``-m ring``).

uWSGI with 4 workers, on a keyspace with three replicas (writes and reads at
QUORUM, lightweight transactions at SERIAL), takes deposits from sixteen clients:
eight with an account each, eight sharing one account. Every deposit carries an
``Idempotency-Key`` and is sent again until it is answered. A node is lost
(SIGKILL) and brought back under that load; then two nodes are lost. What must
hold: no acknowledged deposit lost, none applied twice, the notification log
gap-free and in order, and with two nodes down a 503 within the request's bound.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from uuid import UUID

import pytest

from bankaccounts.application import BankAccounts
from bankaccounts.timeouts import server_timeout
from cassandra_testing.node import CassandraRing
from cookbook_testing.contract import assert_error
from cookbook_testing.servers import ServerProcess, wait_for
from cookbook_testing.standalone import DepositLoad, until_not_503
from eventsourcing_cassandra.recorders import CassandraApplicationRecorder

#: Answers each load gets in each phase: before, while a node is lost (a few seconds
#: at this machine's rate), and after the node was brought back (under load all along).
ANSWERS = {"before": 40, "a node lost": 150, "brought back": 40}
#: Seconds each phase may take to get them.
PHASE_BOUND = 120.0


def assert_log_is_the_events(app: BankAccounts, accounts: list[UUID]) -> None:
    """The notification log's ids run 1, 2, 3... and hold each account's events once, in order."""
    recorder = app.recorder
    assert isinstance(recorder, CassandraApplicationRecorder)
    log = recorder.select_notifications(None, 100_000)
    assert [notification.id for notification in log] == list(range(1, len(log) + 1))
    for account_id in accounts:
        logged = [n.originator_version for n in log if n.originator_id == account_id]
        assert logged == [event.originator_version for event in recorder.select_events(account_id)], account_id


def answered_since(loads: Mapping[str, DepositLoad], marks: Mapping[str, int], answers: int) -> bool:
    return all(len(load.outcomes) >= marks[name] + answers for name, load in loads.items())


@pytest.mark.ring
class RingChecks:
    """The recipe's uWSGI (4 workers) on the ring, under contended and uncontended load."""

    @pytest.fixture
    def ring_server(
        self, recipe_dir: Path, server_env: dict[str, str], ring_store_env: dict[str, str]
    ) -> Iterator[ServerProcess]:
        """The recipe's uWSGI, started on the ring; killed after the test."""
        server = ServerProcess("uwsgi", recipe_dir, env={**ring_store_env, **server_env})
        try:
            yield server.start()
        finally:
            server.kill()

    def test_a_node_lost_under_load_loses_no_acknowledged_deposit(
        self,
        ring_server: ServerProcess,
        ring_store_env: Mapping[str, str],
        cassandra_ring: CassandraRing,
    ) -> None:
        server = ring_server
        loads = {"uncontended": DepositLoad(server, threads=8), "contended": DepositLoad(server, threads=8, accounts=1)}
        lost = cassandra_ring.nodes[2]
        phases: dict[str, Callable[[], None]] = {
            "before": lambda: None,
            "a node lost": lost.kill,
            "brought back": cassandra_ring.bring_back,
        }
        failed: dict[str, Counter[int | str]] = {}
        took: dict[str, float] = {}
        for load in loads.values():
            load.start()
        try:
            for phase, action in phases.items():
                started = time.monotonic()
                action()
                marks = {name: len(load.outcomes) for name, load in loads.items()}
                wait_for(
                    functools.partial(answered_since, loads, marks, ANSWERS[phase]),
                    PHASE_BOUND,
                    f"{ANSWERS[phase]} answers to each load ({phase})",
                )
                took[phase] = round(time.monotonic() - started, 1)
                failed[phase] = Counter(
                    outcome
                    for name, load in loads.items()
                    for outcome in load.outcomes[marks[name] :]
                    if outcome != 200
                )
        finally:
            for load in loads.values():
                load.stop()
        answered = {name: len(load.outcomes) for name, load in loads.items()}
        print(f"ring under load: {answered} answers; seconds by phase {took}; not 200, by phase: {failed}")
        for load in loads.values():
            load.assert_every_deposit_applied_once()
        reader = BankAccounts(env=dict(ring_store_env))
        try:
            accounts = [UUID(account_id) for load in loads.values() for account_id in load.account_ids]
            assert_log_is_the_events(reader, accounts)
        finally:
            reader.close()

    def test_with_two_nodes_down_a_deposit_is_a_503_in_time_and_changes_nothing(
        self,
        ring_server: ServerProcess,
        ring_store_env: Mapping[str, str],
        cassandra_ring: CassandraRing,
    ) -> None:
        server = ring_server
        client = server.client
        opened = client.post("/accounts", json={"full_name": "Ada", "email_address": "ada@example.com"})
        assert opened.status == 201, opened.body
        account_id = opened.json["id"]
        deposit = f"/accounts/{account_id}/deposit"
        first, second = ({"Idempotency-Key": str(uuid.uuid4())} for _ in range(2))
        assert client.post(deposit, json={"amount": 100}, headers=first).status == 200
        for node in cassandra_ring.nodes[1:]:
            node.kill()
        started = time.monotonic()
        refused = client.post(deposit, json={"amount": 1}, headers=second)
        took = time.monotonic() - started
        print(f"ring, two nodes down: {refused.status} after {took:.1f} s: {refused.body[:200]!r}")
        assert_error(refused, 503)
        assert took < server_timeout(ring_store_env)
        cassandra_ring.bring_back()
        read = until_not_503(lambda: client.get(f"/accounts/{account_id}"), tries=50)[-1]
        assert (read.status, read.json["balance"]) == (200, 100), read.body
        for _ in range(2):  # sent again once the ring is back, then once more: applied once
            again = until_not_503(lambda: client.post(deposit, json={"amount": 1}, headers=second), tries=50)[-1]
            assert (again.status, again.json["balance"]) == (200, 101), again.body
        reader = BankAccounts(env=dict(ring_store_env))
        try:
            assert_log_is_the_events(reader, [UUID(account_id)])
        finally:
            reader.close()
