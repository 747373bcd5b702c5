from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bankaccounts.application import BankAccounts, construct_application
from bankaccounts.domain import (
    AccountClosedError,
    AccountNotFoundError,
    CommandIdReusedError,
    InsufficientFundsError,
    InvalidAmountError,
    TransferToSameAccountError,
)


def test_store_is_the_one_database_url_selects(app: BankAccounts, test_store: str) -> None:
    assert app.store == test_store


def test_commands_are_recorded_and_replayed(app: BankAccounts, database_url: str) -> None:
    account = app.open_account("Ada Lovelace", "ada@example.com")
    app.deposit(account.id, 1000)
    app.withdraw(account.id, 300)
    app.set_overdraft_limit(account.id, 50)
    # A second application on the same database sees the same history.
    with construct_application() as other:
        copy = other.get_account(account.id)
    assert (copy.balance, copy.overdraft_limit, copy.version) == (700, 50, 4)


def test_transfer_saves_both_accounts_in_one_recording(app: BankAccounts, count_events: Callable[[], int]) -> None:
    source = app.open_account("Ada", "ada@example.com")
    destination = app.open_account("Grace", "grace@example.com")
    app.deposit(source.id, 100)
    before = count_events()
    recordings: list[int] = []
    original_save = app.save

    def counting_save(*objs, **kwargs):
        recordings.append(len(objs))
        return original_save(*objs, **kwargs)

    app.save = counting_save  # type: ignore[method-assign]  # this instance's save(), counted
    app.transfer(source.id, destination.id, 60)
    assert recordings == [2]  # one save() carried both aggregates
    assert count_events() == before + 2
    assert app.get_account(source.id).balance == 40
    assert app.get_account(destination.id).balance == 60


def test_failed_transfer_changes_nothing(app: BankAccounts, count_events: Callable[[], int]) -> None:
    source = app.open_account("Ada", "ada@example.com")
    destination = app.open_account("Grace", "grace@example.com")
    app.deposit(source.id, 100)
    before = count_events()
    with pytest.raises(InsufficientFundsError):
        app.transfer(source.id, destination.id, 101)
    with pytest.raises(AccountNotFoundError):
        app.transfer(source.id, uuid.uuid4(), 1)
    with pytest.raises(TransferToSameAccountError):
        app.transfer(source.id, source.id, 1)
    app.close_account(destination.id)
    with pytest.raises(AccountClosedError):
        app.transfer(source.id, destination.id, 1)
    assert count_events() == before + 1  # only the Closed event
    assert app.get_account(source.id).balance == 100


def test_unknown_accounts(app: BankAccounts) -> None:
    with pytest.raises(AccountNotFoundError):
        app.get_account(uuid.uuid4())
    with pytest.raises(AccountNotFoundError):
        app.deposit(uuid.uuid4(), 10)


def test_invalid_amount_is_refused_before_any_read(app: BankAccounts) -> None:
    # Not AccountNotFoundError: arguments are checked before the store is touched.
    with pytest.raises(InvalidAmountError):
        app.deposit(uuid.uuid4(), 0)


def test_threads_contending_on_one_account_all_succeed(app: BankAccounts) -> None:
    account = app.open_account("Ada", "ada@example.com")
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda _: app.deposit(account.id, 3), range(200)))
    final = app.get_account(account.id)
    assert (final.balance, final.version) == (600, 201)


def _deposit_many(database_url: str, account_id: str, threads: int, deposits: int) -> None:
    """Runs in a freshly spawned process: its own application, its own connections.

    The schema exists (the test's application created it), so this one must not
    create it again: four processes doing so at once raced on PostgreSQL's
    catalog ("tuple concurrently updated"), as the docs warn.
    """
    import os

    from bankaccounts.application import SCHEMA_EXISTS
    from bankaccounts.retry import RetryPolicy

    os.environ["DATABASE_URL"] = database_url
    # No request waits here, so no request's time budget (REQUEST_TIMEOUT, 10 s):
    # on a CI run loaded far past its two cores, the unluckiest of these 1,600
    # deposits on SQLite once needed more. What is tested is that all succeed.
    retry = RetryPolicy(time_budget=120)
    with (
        construct_application(env=SCHEMA_EXISTS, retry=retry) as app,
        ThreadPoolExecutor(max_workers=threads) as pool,
    ):
        list(pool.map(lambda _: app.deposit(uuid.UUID(account_id), 5), range(deposits)))


def test_processes_contending_on_one_account_all_succeed(app: BankAccounts, database_url: str) -> None:
    processes, threads, deposits = 4, 4, 100
    account = app.open_account("Ada", "ada@example.com")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_deposit_many, args=(database_url, str(account.id), threads, deposits))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        if worker.is_alive():  # bounded: never leave a stray process behind
            worker.kill()
    assert [worker.exitcode for worker in workers] == [0] * processes
    final = app.get_account(account.id)
    assert final.balance == processes * deposits * 5
    assert final.version == 1 + processes * deposits


def _create_schema(database_url: str, start: Any) -> None:
    import os

    from bankaccounts.application import create_schema

    os.environ["DATABASE_URL"] = database_url
    start.wait(timeout=60)  # all at once: the race uWSGI's lazy-apps workers run
    create_schema()


@pytest.mark.parametrize("round_", range(8))
def test_schema_creation_survives_processes_racing(round_: int, database_url: str) -> None:
    """Eight processes creating the schema at the same instant all succeed (the losers look again).

    Each round is a new database: the race is for its first tables (and, on
    SQLite, for switching a new file to WAL mode, which failed 2 rounds in 30).
    """
    from bankaccounts.application import SCHEMA_EXISTS

    context = multiprocessing.get_context("fork")
    start = context.Barrier(8)
    workers = [context.Process(target=_create_schema, args=(database_url, start)) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        if worker.is_alive():
            worker.kill()
    assert [worker.exitcode for worker in workers] == [0] * 8
    with construct_application(env=SCHEMA_EXISTS) as app:
        account = app.open_account("Ada", "ada@example.com")
        assert app.get_account(account.id).version == 1


def test_schema_creation_gives_up_at_once_on_a_database_it_cannot_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    """A race between creators is won a moment later; a database that refuses every
    connection is not. One wait for a connection, then the error: a worker that starts
    during an outage starts at once, without its application, not ten waits later."""
    import socket

    from eventsourcing.persistence import PersistenceError

    from bankaccounts import application
    from bankaccounts.unavailable import store_unavailable

    with socket.socket() as sock:  # a port with nothing behind it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{port}/none")
    attempts: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> BankAccounts:
        attempts.append(1)
        return construct_application(*args, **kwargs)

    monkeypatch.setattr(application, "construct_application", counted)
    with pytest.raises(PersistenceError) as raised:
        application.create_schema()
    assert store_unavailable(raised.value)
    assert len(attempts) == 1


def test_connections_are_labelled_with_the_constructing_process(database_url: str) -> None:

    import os

    with construct_application():
        assert os.environ["PGAPPNAME"] == f"bankaccounts-{os.getpid()}"


def test_a_command_id_applies_a_command_once(app: BankAccounts, count_events: Callable[[], int]) -> None:
    account = app.open_account("Ada", "ada@example.com", command_id="open-1")
    assert app.open_account("Ada", "ada@example.com", command_id="open-1").id == account.id
    other = app.open_account("Grace", "grace@example.com")
    for _ in range(3):  # a message delivered three times
        app.deposit(account.id, 100, command_id="deposit-1")
        app.withdraw(account.id, 30, command_id="withdraw-1")
        app.transfer(account.id, other.id, 20, command_id="transfer-1")
    assert app.get_account(account.id).balance == 50
    assert app.get_account(other.id).balance == 20
    app.deposit(account.id, 100)  # no command id: applied every time
    app.deposit(account.id, 100)
    assert app.get_account(account.id).balance == 250
    for _ in range(2):
        app.set_overdraft_limit(account.id, 500, command_id="limit-1")
        app.close_account(other.id, command_id="close-1")  # the second is not "already closed"
    assert app.get_account(account.id).version == 7  # opened, five moves of money, one new limit
    assert app.is_applied("close-1") and not app.is_applied("close-2")


@pytest.mark.parametrize(
    "other_request",
    [
        lambda app, ids: app.deposit(ids[0], 101, command_id="key-1"),  # another amount
        lambda app, ids: app.deposit(ids[1], 100, command_id="key-1"),  # another account
        lambda app, ids: app.withdraw(ids[0], 100, command_id="key-1"),  # another command
        lambda app, ids: app.open_account("Ada", "ada@example.com", command_id="key-1"),
    ],
)
def test_a_command_id_used_for_another_request_is_refused_and_changes_nothing(
    app: BankAccounts, count_events: Callable[[], int], other_request: Callable[..., object]
) -> None:
    ids = [app.open_account("Ada", "ada@example.com").id, app.open_account("Grace", "grace@example.com").id]
    app.deposit(ids[0], 100, command_id="key-1")
    before = count_events()
    with pytest.raises(CommandIdReusedError, match="key-1"):
        other_request(app, ids)
    assert count_events() == before
    assert app.deposit(ids[0], 100, command_id="key-1").balance == 100  # the same request is still answered


def test_duplicates_racing_each_other_apply_once(app: BankAccounts) -> None:
    account = app.open_account("Ada", "ada@example.com")
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: app.deposit(account.id, 5, command_id=f"deposit-{i % 10}"), range(80)))
    assert len(results) == 80
    final = app.get_account(account.id)
    assert (final.balance, final.version) == (50, 11)
