from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from eventsourcing.persistence import IntegrityError

from bankaccounts.aggregate_locks import (
    AGGREGATE_LOCKS_ENV,
    CONTENDED_PRUNE_AT,
    Combined,
    ContendedAggregates,
    FileLocks,
    NoLocks,
    PostgresAdvisoryLocks,
    ThreadLocks,
    TransactionAdvisoryLocks,
    advisory_key,
    aggregate_locks_enabled,
    in_lock_order,
    sqlite_file,
)
from bankaccounts.application import BankAccounts, construct_application
from bankaccounts.retry import ConflictUnresolvedError, RetryPolicy
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
    database_locks = PostgresAdvisoryLocks if test_store == "postgresql" else FileLocks
    assert isinstance(app.locks, Combined)
    assert [type(locks) for locks in app.locks.locks] == [ThreadLocks, database_locks]


def test_aggregate_locks_off_leaves_writers_racing(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AGGREGATE_LOCKS_ENV, "off")
    with construct_application() as application:
        assert isinstance(application.locks, NoLocks)


@pytest.fixture
def applications(database_url: str, test_store: str) -> Iterator[list[BankAccounts]]:
    """Four applications, as four worker processes would have: PostgreSQL's
    advisory locks or the SQLite file's lock files serialise them."""
    with ExitStack() as stack:
        yield [stack.enter_context(construct_application()) for _ in range(4)]


def test_sixteen_writers_on_one_account_all_win_in_the_end(applications: list[BankAccounts]) -> None:
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


def always_conflicting(application: BankAccounts) -> list[tuple[object, ...]]:
    """Make every ``save()`` of ``application`` lose its race; return what each tried to save."""
    attempts: list[tuple[object, ...]] = []

    def save(*objs: object, **kwargs: object) -> None:
        attempts.append(objs)
        msg = "another writer recorded this version first"
        raise IntegrityError(msg)

    application.save = save  # type: ignore[method-assign,assignment]  # this instance's save(), failing
    return attempts


@pytest.fixture
def holder_and_other(
    database_url: str, test_store: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[BankAccounts, BankAccounts]]:
    """An application whose writer holds a lock, and another application (as another
    process would have) whose writer must wait for it. Waits end after 1 s."""
    monkeypatch.setenv(REQUEST_TIMEOUT_ENV, "1")
    with ExitStack() as stack:
        yield stack.enter_context(construct_application()), stack.enter_context(construct_application())


def test_a_first_attempt_goes_ahead_and_a_retry_waits_for_its_turn(
    holder_and_other: tuple[BankAccounts, BankAccounts],
) -> None:
    """On an account nobody has raced for, a command's first attempt takes no lock (so
    an uncontended write costs nothing more); once it has lost a race, it waits for
    the account's lock, for ``REQUEST_TIMEOUT`` at most, and then answers 503."""
    holder, other = holder_and_other
    account = holder.open_account("Ada", "ada@example.com")
    with holder.locks.hold([account.id]):
        attempts = always_conflicting(other)
        started = time.monotonic()
        with pytest.raises(Exception) as raised:  # the store's own error, checked below
            other.deposit(account.id, 5)
    assert len(attempts) == 1  # the first, made while the lock was held; the retry never got its turn
    assert store_unavailable(raised.value), repr(raised.value)
    assert 1 <= time.monotonic() - started < 5


def test_once_writers_have_raced_for_an_account_its_writers_take_turns_from_the_start(
    holder_and_other: tuple[BankAccounts, BankAccounts],
) -> None:
    holder, other = holder_and_other
    account = holder.open_account("Ada", "ada@example.com")
    other.contended.mark([account.id])  # a command of this process lost a race for it just now
    with holder.locks.hold([account.id]):
        attempts = always_conflicting(other)
        with pytest.raises(Exception) as raised:  # the store's own error, checked below
            other.deposit(account.id, 5)
    assert attempts == []  # even the first attempt waited for its turn
    assert store_unavailable(raised.value), repr(raised.value)


def test_an_aggregate_is_contended_for_a_while_after_its_last_race_or_turn() -> None:
    now = [100.0]
    contended = ContendedAggregates(seconds=10.0, clock=lambda: now[0])
    hot, quiet = uuid.uuid4(), uuid.uuid4()
    assert not contended.any([hot])
    contended.mark([hot])
    now[0] += 9.9
    assert contended.any([hot]) and contended.any([quiet, hot]) and not contended.any([quiet])
    contended.mark([hot])  # a write in turn keeps it contended
    now[0] += 9.9
    assert contended.any([hot])
    now[0] += 0.2
    assert not contended.any([hot])


def test_contended_aggregates_forget_the_quiet_ones_when_there_are_many() -> None:
    now = [0.0]
    contended = ContendedAggregates(seconds=1.0, clock=lambda: now[0])
    contended.mark(uuid.uuid4() for _ in range(CONTENDED_PRUNE_AT))
    now[0] = 5.0
    recent = uuid.uuid4()
    contended.mark([recent])  # one more than CONTENDED_PRUNE_AT: the quiet ones go
    assert contended.any([recent])
    assert len(contended._last) == 1


def test_inside_a_transaction_someone_else_owns_every_attempt_waits_for_its_turn(
    holder_and_other: tuple[BankAccounts, BankAccounts],
) -> None:
    """With ``retry=None`` (a web request's session) the locks cost one statement in the
    owner's transaction, so even the first attempt takes them."""
    holder, other = holder_and_other
    other.retry = None
    account = holder.open_account("Ada", "ada@example.com")
    with holder.locks.hold([account.id]):
        attempts = always_conflicting(other)
        with pytest.raises(Exception) as raised:  # the store's own error, checked below
            other.deposit(account.id, 5)
    assert attempts == []
    assert store_unavailable(raised.value), repr(raised.value)


def test_a_transfer_takes_its_turn_at_both_accounts(app: BankAccounts) -> None:
    source = app.open_account("Ada", "ada@example.com")
    destination = app.open_account("Grace", "grace@example.com")
    app.deposit(source.id, 100)
    held: list[set[uuid.UUID]] = []
    locks = app.locks

    @contextmanager
    def recording_hold(aggregate_ids: Iterable[uuid.UUID]) -> Iterator[None]:
        held.append(set(aggregate_ids))
        with locks.hold(aggregate_ids):
            yield

    app.locks = SimpleNamespace(hold=recording_hold)
    app.retry = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0)
    always_conflicting(app)
    with pytest.raises(ConflictUnresolvedError):
        app.transfer(source.id, destination.id, 10)
    assert len(held) == 2  # the two retries; the first attempt took no lock
    assert all(ids == {source.id, destination.id} for ids in held)


def test_the_database_lock_is_released_when_its_holder_fails(
    holder_and_other: tuple[BankAccounts, BankAccounts],
) -> None:
    holder, other = holder_and_other
    account = holder.open_account("Ada", "ada@example.com")
    with pytest.raises(ZeroDivisionError), holder.locks.hold([account.id]):
        _ = 1 / 0
    with other.locks.hold([account.id]):  # at once: nobody holds it
        pass
    assert other.deposit(account.id, 7).balance == 7


@pytest.mark.parametrize(
    ("db_name", "path"),
    [
        ("var/bankaccounts.sqlite3", "var/bankaccounts.sqlite3"),
        ("file:/srv/bank.sqlite3?mode=rw", "/srv/bank.sqlite3"),
        (":memory:", None),
        ("file:bank?mode=memory&cache=shared", None),
        ("", None),
    ],
)
def test_file_locks_go_beside_a_database_file_and_none_for_one_in_memory(db_name: str, path: str | None) -> None:
    assert sqlite_file(db_name) == path


def test_another_process_waits_for_a_file_lock_and_no_longer_than_the_request_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock holds between processes (a forked child holds it here), a waiter gives
    up with ``RequestTimeoutError`` (503) after ``REQUEST_TIMEOUT``, and a holder that
    dies releases it: the next writer goes in at once."""
    monkeypatch.setenv(REQUEST_TIMEOUT_ENV, "1")
    locks = FileLocks(tmp_path / "bankaccounts.sqlite3")
    account = uuid.uuid4()
    ready_read, ready_write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child holds the lock until it is killed
        try:
            with locks.hold([account]):
                os.write(ready_write, b"x")
                time.sleep(60)
        finally:
            os._exit(0)
    try:
        assert os.read(ready_read, 1) == b"x"
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as raised, locks.hold([account]):
            pass
        assert 1 <= time.monotonic() - started < 3
        assert store_unavailable(raised.value)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(ready_read)
        os.close(ready_write)
    started = time.monotonic()
    with locks.hold([account]):
        assert time.monotonic() - started < 0.5


def test_file_locks_exclude_the_threads_of_one_process_and_are_released_on_failure(tmp_path: Path) -> None:
    locks = FileLocks(tmp_path / "bankaccounts.sqlite3", stripes=1)
    entered = threading.Event()

    def other_writer() -> None:
        with locks.hold([uuid.uuid4()]):
            entered.set()

    with pytest.raises(ZeroDivisionError), locks.hold([uuid.uuid4()]):
        thread = threading.Thread(target=other_writer)
        thread.start()
        assert not entered.wait(0.3)  # the one stripe is held: the other thread waits
        _ = 1 / 0
    thread.join(5)
    assert entered.is_set()  # the failed command's lock was released
