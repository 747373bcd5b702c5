from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from bankaccounts.aggregate_locks import (
    AGGREGATE_LOCKS_ENV,
    Combined,
    NoLocks,
    PostgresAdvisoryLocks,
    ThreadLocks,
    TransactionAdvisoryLocks,
    advisory_key,
    aggregate_locks_enabled,
    in_lock_order,
)
from bankaccounts.application import BankAccounts, construct_application
from bankaccounts.retry import RetryPolicy
from bankaccounts.timeouts import REQUEST_TIMEOUT_ENV, RequestTimeoutError
from bankaccounts.web import store_unavailable

#: Writers at once on one account, as in the Performance page's contention run.
WRITERS = 16
DEPOSITS_EACH = 10


@pytest.mark.parametrize(("value", "enabled"), [(None, True), ("on", True), ("OFF", False), (" off ", False)])
def test_the_knob_turns_the_locks_on_and_off(value: str | None, enabled: bool) -> None:
    environ = {} if value is None else {AGGREGATE_LOCKS_ENV: value}
    assert aggregate_locks_enabled(environ) is enabled


def test_the_knob_refuses_anything_else() -> None:
    with pytest.raises(ValueError, match="AGGREGATE_LOCKS must be 'on' or 'off'"):
        aggregate_locks_enabled({AGGREGATE_LOCKS_ENV: "yes"})


def test_every_writer_takes_its_locks_in_one_order() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert in_lock_order([a, b]) == in_lock_order([b, a, b]) == sorted({advisory_key(a), advisory_key(b)})
    keys = [advisory_key(uuid.uuid4()) for _ in range(1000)]
    assert all(-(2**63) <= key < 2**63 for key in keys)  # PostgreSQL's bigint
    assert advisory_key(a) == advisory_key(uuid.UUID(str(a)))


def test_a_thread_waits_for_its_turn_and_no_longer_than_the_request_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUEST_TIMEOUT_ENV, "1")
    locks = ThreadLocks()
    account = uuid.uuid4()
    outcome: list[object] = []

    def other_writer() -> None:
        try:
            with locks.hold([account]):
                outcome.append("entered")
        except RequestTimeoutError as error:
            outcome.append(error)

    with locks.hold([account]):
        thread = threading.Thread(target=other_writer)
        thread.start()
        thread.join(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], RequestTimeoutError)
    assert store_unavailable(outcome[0])  # a 503, not a 500
    # Released on leaving: the next writer gets its turn at once.
    other_writer()
    assert outcome[-1] == "entered"


def test_locks_are_released_when_the_command_fails() -> None:
    locks = ThreadLocks(stripes=1)
    with pytest.raises(ZeroDivisionError), locks.hold([uuid.uuid4()]):
        _ = 1 / 0
    with locks.hold([uuid.uuid4()]):  # the one stripe is free again
        pass


def test_a_transaction_owner_takes_each_lock_once_in_order() -> None:
    taken: list[int] = []
    ids = [uuid.uuid4() for _ in range(3)]
    with TransactionAdvisoryLocks(taken.append).hold([*ids, ids[0]]):
        pass
    assert taken == in_lock_order(ids)


def test_the_application_takes_the_locks_its_store_offers(app: BankAccounts, test_store: str) -> None:
    if test_store == "postgresql":
        assert isinstance(app.locks, Combined)
        assert [type(locks) for locks in app.locks.locks] == [ThreadLocks, PostgresAdvisoryLocks]
    else:
        assert isinstance(app.locks, ThreadLocks)


def test_aggregate_locks_off_leaves_writers_racing(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AGGREGATE_LOCKS_ENV, "off")
    with construct_application() as application:
        assert isinstance(application.locks, NoLocks)


@pytest.fixture
def applications(database_url: str, test_store: str) -> Iterator[list[BankAccounts]]:
    """Four applications (as four worker processes would have) on PostgreSQL,
    where the database's lock serialises them; one on SQLite, whose file has
    no lock per account (its writers are the threads of one process)."""
    # attempts=1: a single lost race fails the command, so any race shows.
    no_retries = RetryPolicy(attempts=1)
    with ExitStack() as stack:
        count = 4 if test_store == "postgresql" else 1
        yield [stack.enter_context(construct_application(retry=no_retries)) for _ in range(count)]


def test_sixteen_writers_on_one_account_take_turns_and_none_loses_a_race(applications: list[BankAccounts]) -> None:
    account = applications[0].open_account("Ada", "ada@example.com")
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def write(writer: int) -> None:
        application = applications[writer % len(applications)]
        start.wait(30)
        for _ in range(DEPOSITS_EACH):
            try:
                application.deposit(account.id, 1)
            except Exception as error:  # collected and asserted below
                errors.append(error)

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    final = applications[0].get_account(account.id)
    assert final.balance == WRITERS * DEPOSITS_EACH
    assert final.version == 1 + WRITERS * DEPOSITS_EACH


def test_without_the_locks_the_same_writers_do_lose_races(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: with ``AGGREGATE_LOCKS=off`` its writers conflict."""
    monkeypatch.setenv(AGGREGATE_LOCKS_ENV, "off")
    conflicts: list[BaseException] = []
    with construct_application(retry=RetryPolicy(attempts=1)) as application:
        account = application.open_account("Ada", "ada@example.com")
        start = threading.Barrier(WRITERS)

        def write() -> None:
            start.wait(30)
            for _ in range(DEPOSITS_EACH):
                try:
                    application.deposit(account.id, 1)
                except Exception as error:  # collected and asserted below
                    conflicts.append(error)

        threads = [threading.Thread(target=write) for _ in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert conflicts, "sixteen unlocked writers never conflicted"


def test_another_process_waits_for_the_database_lock_no_longer_than_the_request_timeout(
    database_url: str, test_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, a writer holding an account's lock keeps every other
    application's writer out, for ``REQUEST_TIMEOUT`` at most (a 503). SQLite's
    applications have no lock between them: the other writer goes ahead."""
    monkeypatch.setenv(REQUEST_TIMEOUT_ENV, "1")
    with construct_application() as holder, construct_application() as other:
        account = holder.open_account("Ada", "ada@example.com")
        with holder.locks.hold([account.id]):
            if test_store == "postgresql":
                with pytest.raises(Exception) as raised:  # the driver's error, checked below
                    other.deposit(account.id, 5)
                assert store_unavailable(raised.value), repr(raised.value)
                assert "lock timeout" in str(raised.value)
            else:
                other.deposit(account.id, 5)
        assert other.deposit(account.id, 7).balance == (7 if test_store == "postgresql" else 12)
