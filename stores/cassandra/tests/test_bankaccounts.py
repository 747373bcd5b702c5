"""The shared ``BankAccounts`` application on Cassandra: no money created or lost.

A transfer saves the source account, the destination account and the record
of the command: three partitions, committed as one transaction (see
``eventsourcing_cassandra.recorders``). Whatever dies wherever, the sum of
all balances never changes, a command applied once is never applied twice,
and the notification log holds exactly the events that readers see.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from bankaccounts.application import BankAccounts
from bankaccounts.retry import ConflictUnresolvedError, RetryPolicy
from bankaccounts.timeouts import cassandra_limits
from eventsourcing_cassandra.recorders import CassandraApplicationRecorder

TX_TIMEOUT = 1.0
OPENING_BALANCE = 1_000_000


class Crash(BaseException):
    pass


@pytest.fixture
def env(cassandra_env: dict[str, str]) -> dict[str, str]:
    return {**cassandra_env, "CASSANDRA_TX_TIMEOUT": str(TX_TIMEOUT)}


@pytest.fixture
def make_app(env: dict[str, str]) -> Iterator[Callable[..., BankAccounts]]:
    """Applications with sessions of their own, as separate processes would have."""
    apps: list[BankAccounts] = []

    def make(**kwargs: Any) -> BankAccounts:
        app = BankAccounts(env=env, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def accounts(make_app: Callable[..., BankAccounts]) -> list[UUID]:
    app = make_app()
    ids = []
    for number in range(4):
        account = app.open_account(f"Holder {number}", f"holder{number}@example.com")
        app.deposit(account.id, OPENING_BALANCE)
        ids.append(account.id)
    return ids


def balances(app: BankAccounts, ids: list[UUID]) -> list[int]:
    return [app.get_account(account_id).balance for account_id in ids]


def dies_at(point: str) -> Callable[[str, UUID], None]:
    """A recorder fault that crashes the writer when it reaches ``point`` (see ``FAULT_POINTS``)."""

    def fault(reached: str, txid: UUID) -> None:
        if reached == point:
            raise Crash(point)

    return fault


def recorder_of(app: BankAccounts) -> CassandraApplicationRecorder:
    assert isinstance(app.recorder, CassandraApplicationRecorder)
    return app.recorder


def assert_log_matches_aggregates(app: BankAccounts, ids: list[UUID]) -> None:
    """Every event a reader sees is in the notification log once, and nothing else is."""
    recorder = recorder_of(app)
    log = recorder.select_notifications(None, 100_000)
    assert [n.id for n in log] == list(range(1, len(log) + 1)), "notification ids are contiguous"
    logged: dict[UUID | str, list[tuple[int, str, bytes]]] = {}
    for notification in log:
        logged.setdefault(notification.originator_id, []).append(
            (notification.originator_version, notification.topic, notification.state)
        )
    for originator_id, entries in logged.items():
        seen = [(e.originator_version, e.topic, e.state) for e in recorder.select_events(originator_id)]
        assert sorted(entries) == seen, f"log and aggregate {originator_id} disagree"
    assert set(ids) <= set(logged)


def money_in_log(app: BankAccounts) -> int:
    """All the money in the accounts, by the notification log up to its head."""
    recorder = recorder_of(app)
    head = recorder.max_notification_id()
    total = 0
    signs = {"Deposited": 1, "TransferReceived": 1, "Withdrawn": -1, "TransferSent": -1}
    for notification in recorder.select_notifications(None, 100_000, stop=head):
        sign = signs.get(notification.topic.rpartition(".")[2], 0)
        if sign:
            total += sign * app.mapper.to_domain_event(notification).amount  # type: ignore[attr-defined]  # each event in signs has one
    return total


def settle(app: BankAccounts, ids: list[UUID], timeout: float = 30.0) -> None:
    """Read until no account holds a row of an undecided transaction: once they are
    older than the timeout, readers abort them and delete their rows."""
    recorder = recorder_of(app)
    deadline = time.monotonic() + timeout
    while True:
        balances(app, ids)  # reading is what resolves
        rows = [
            row
            for account_id in ids
            for row in recorder.datastore.execute(
                "SELECT txid, committed FROM {keyspace}.events WHERE application_name = ? AND originator_id = ?",
                (recorder.application_name, account_id),
            )
        ]
        if not [row for row in rows if row.txid and not row.committed]:
            return
        assert time.monotonic() < deadline, "rows of undecided transactions were never cleared"
        time.sleep(0.1)


def test_a_transfer_is_all_or_nothing_when_the_writer_dies_between_the_accounts(
    make_app: Callable[..., BankAccounts], accounts: list[UUID]
) -> None:
    source, destination = accounts[:2]
    writer, reader = make_app(retry=None), make_app()

    recorder_of(writer).faults = dies_at("after_partition")
    with pytest.raises(Crash):
        writer.transfer(source, destination, 300, command_id="transfer-1")
    # The source's row is written, uncommitted: nobody sees money leave it.
    assert balances(reader, accounts) == [OPENING_BALANCE] * 4
    # Retried with the same command id (a queue redelivering it): applied once.
    reader.transfer(source, destination, 300, command_id="transfer-1")
    reader.transfer(source, destination, 300, command_id="transfer-1")
    assert balances(reader, accounts) == [OPENING_BALANCE - 300, OPENING_BALANCE + 300, *[OPENING_BALANCE] * 2]
    assert_log_matches_aggregates(reader, accounts)


#: A short request budget, so that the test waits seconds, not tens of them.
BUDGET = 6


@pytest.mark.parametrize(
    ("tx_timeout", "next_writer_succeeds"),
    [(cassandra_limits({"REQUEST_TIMEOUT": str(BUDGET)})["CASSANDRA_TX_TIMEOUT"], True), ("10", False)],
    ids=["recipes-half-the-budget", "the-stores-default-longer-than-the-budget"],
)
def test_the_next_writer_after_a_writer_died_mid_transaction_succeeds_within_its_budget(
    cassandra_env: dict[str, str], tx_timeout: str, next_writer_succeeds: bool
) -> None:
    """A killed worker's transaction holds the account's next version until it is
    ``CASSANDRA_TX_TIMEOUT`` old. The recipes make that half of the request's budget
    (``cassandra_limits``), so the account's next writer, losing its races meanwhile,
    still wins within its budget (``RetryPolicy`` gives up after it). A timeout longer
    than the budget (the store's own 10 s is the recipes' default budget) leaves it a 409."""
    env = {**cassandra_env, **cassandra_limits({"REQUEST_TIMEOUT": str(BUDGET)}), "CASSANDRA_TX_TIMEOUT": tx_timeout}
    dying, next_writer = BankAccounts(env=env, retry=None), BankAccounts(env=env, retry=RetryPolicy(time_budget=BUDGET))
    try:
        account = next_writer.open_account("Ada", "ada@example.com")
        recorder_of(dying).faults = dies_at("before_commit")
        with pytest.raises(Crash):
            dying.deposit(account.id, 100, command_id="killed")
        if next_writer_succeeds:
            next_writer.deposit(account.id, 50, command_id="next")
            assert next_writer.get_account(account.id).balance == 50
        else:
            with pytest.raises(ConflictUnresolvedError):
                next_writer.deposit(account.id, 50, command_id="next")
            assert next_writer.get_account(account.id).balance == 0
    finally:
        dying.close()
        next_writer.close()


def test_a_read_stops_at_the_first_version_it_cannot_see(
    make_app: Callable[..., BankAccounts], accounts: list[UUID]
) -> None:
    """An aggregate's rows come back in pages, each read at its own moment. A row in
    flight on one page, and on the next a row committed after it (16 writers on one
    account, past 100 events, did this in CI), must not leave a gap in the history."""
    account = accounts[0]  # version 1 opened it, version 2 deposited into it
    writer, reader = make_app(retry=None), make_app()

    recorder_of(writer).faults = dies_at("after_partition")
    with pytest.raises(Crash):
        writer.deposit(account, 5, command_id="in-flight")  # version 3: written, not committed
    # What the next page can show: version 4, which only a writer that saw 3 committed writes.
    recorder = recorder_of(reader)
    where = "WHERE application_name = ? AND originator_id = ? AND originator_version = ?"
    row = recorder.datastore.execute(
        f"SELECT topic, state FROM {{keyspace}}.{recorder.table} {where}",  # the store's own table
        (recorder.application_name, account, 2),
    ).one()
    recorder.datastore.execute(
        f"INSERT INTO {{keyspace}}.{recorder.table} "  # the store's own table
        "(application_name, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)",
        (recorder.application_name, account, 4, row.topic, row.state),
    )
    assert reader.get_account(account).version == 2


def test_a_transfer_whose_writer_dies_after_committing_is_complete(
    make_app: Callable[..., BankAccounts], accounts: list[UUID]
) -> None:
    source, destination = accounts[:2]
    writer, reader = make_app(retry=None), make_app()

    recorder_of(writer).faults = dies_at("after_commit")
    with pytest.raises(Crash):
        writer.transfer(source, destination, 300, command_id="transfer-1")
    assert balances(reader, accounts) == [OPENING_BALANCE - 300, OPENING_BALANCE + 300, *[OPENING_BALANCE] * 2]
    reader.transfer(source, destination, 300, command_id="transfer-1")  # redelivered: not applied again
    assert sum(balances(reader, accounts)) == 4 * OPENING_BALANCE
    assert balances(reader, accounts)[0] == OPENING_BALANCE - 300
    assert_log_matches_aggregates(reader, accounts)


@pytest.mark.parametrize("point", ["after_partition", "before_commit", "after_commit"])
def test_a_worker_process_killed_mid_transfer_loses_and_creates_nothing(
    make_app: Callable[..., BankAccounts], accounts: list[UUID], env: dict[str, str], point: str
) -> None:
    """A real process, killed with SIGKILL at each step of the transfer's write."""
    source, destination = accounts[:2]
    worker = Path(__file__).with_name("crash_worker.py")
    result = subprocess.run(
        [sys.executable, str(worker), json.dumps(env), str(source), str(destination), "250", "command-9", point],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == -9, result.stdout + result.stderr
    app = make_app()
    moved = balances(app, accounts)
    assert sum(moved) == 4 * OPENING_BALANCE
    committed = point == "after_commit"
    assert moved[:2] == ([OPENING_BALANCE - 250, OPENING_BALANCE + 250] if committed else [OPENING_BALANCE] * 2)
    # The queue redelivers the command: it is applied exactly once in all.
    app.transfer(source, destination, 250, command_id="command-9")
    assert balances(app, accounts)[:2] == [OPENING_BALANCE - 250, OPENING_BALANCE + 250]
    assert_log_matches_aggregates(app, accounts)


def test_concurrent_transfers_with_crashes_conserve_money_and_apply_each_command_once(
    make_app: Callable[..., BankAccounts], accounts: list[UUID]
) -> None:
    """Four writers (sessions of their own) move money among four accounts while a
    quarter of their writes die at a random point; then every command is redelivered."""
    random.seed(1234)
    commands: list[tuple[str, UUID, UUID, int]] = []
    for n in range(80):
        source, destination = random.sample(accounts, 2)
        commands.append((f"cmd-{n}", source, destination, random.randint(1, 100)))
    crashed: list[tuple[str, UUID, UUID, int]] = []
    errors: list[BaseException] = []
    observer = make_app()
    observed_sums: list[int] = []
    stop_observing = threading.Event()

    def observe() -> None:
        # Reading four accounts one after the other is not a snapshot (on any
        # store, outside a transaction), so a transfer committing between two
        # reads would be counted half. The notification log up to its head is a
        # consistent cut: a transaction's events enter it in one conditional batch.
        while not stop_observing.is_set():
            observed_sums.append(money_in_log(observer))

    def write(worker: int) -> None:
        # Not a request: these writers race each other on purpose, so they get far
        # more time than REQUEST_TIMEOUT (a loaded CI machine needed over 10 s).
        app = make_app(retry=RetryPolicy(attempts=200, max_delay=0.2, time_budget=240))
        rng = random.Random(worker)

        def maybe_die(point: str, txid: UUID) -> None:
            if rng.random() < 0.1:
                raise Crash(point)

        recorder_of(app).faults = maybe_die
        for command in commands[worker::4]:
            try:
                app.transfer(command[1], command[2], command[3], command_id=command[0])
            except Crash:
                crashed.append(command)
            except Exception as error:
                errors.append(error)

    observer_thread = threading.Thread(target=observe)
    observer_thread.start()
    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    stop_observing.set()
    observer_thread.join(60)
    assert not errors, errors
    assert crashed, "no write was crashed: the test proved nothing"
    # At every moment a reader looked, no money had been created or lost.
    assert observed_sums and set(observed_sums) == {4 * OPENING_BALANCE}
    # Redeliver every command (as a queue would): the crashed ones complete, none repeats.
    app = make_app()
    for command_id, source, destination, amount in commands:
        app.transfer(source, destination, amount, command_id=command_id)
    expected = dict.fromkeys(accounts, OPENING_BALANCE)
    for _, source, destination, amount in commands:
        expected[source] -= amount
        expected[destination] += amount
    assert balances(app, accounts) == [expected[account_id] for account_id in accounts]
    settle(app, accounts)
    assert_log_matches_aggregates(app, accounts)
    print(f"{len(commands)} transfers, {len(crashed)} crashed and redelivered, {len(observed_sums)} observations")
