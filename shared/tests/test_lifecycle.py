from __future__ import annotations

import logging
import multiprocessing
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bankaccounts import lifecycle
from bankaccounts.application import BankAccounts
from bankaccounts.lifecycle import (
    close_application,
    get_application,
    get_or_init_application,
    init_application,
)
from bankaccounts.slot import (
    ApplicationAlreadyInitialisedError,
    ApplicationForkedError,
    ApplicationNotInitialisedError,
    ApplicationSlot,
)

pytestmark = pytest.mark.usefixtures("database_url")


def test_get_before_init_raises() -> None:
    with pytest.raises(ApplicationNotInitialisedError, match="call init_application"):
        get_application()


def test_init_then_get_returns_the_same_instance() -> None:
    application = init_application()
    assert isinstance(application, BankAccounts)
    assert get_application() is application
    assert get_or_init_application() is application


def test_init_twice_raises() -> None:
    init_application()
    with pytest.raises(ApplicationAlreadyInitialisedError, match="already been called"):
        init_application()


def test_close_resets_so_init_can_run_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bankaccounts.lifecycle")
    first = init_application()
    close_application()
    assert first.closing.is_set()
    assert f"closed application {first.instance_id} in process" in caplog.text
    with pytest.raises(ApplicationNotInitialisedError):
        get_application()
    second = init_application()
    assert second is not first
    assert second.instance_id != first.instance_id
    close_application()
    close_application()  # closing nothing is fine


def test_lazy_getter_constructs_exactly_once_under_32_threads() -> None:
    constructed: list[int] = []

    def slow_factory(**kwargs: Any) -> BankAccounts:
        constructed.append(threading.get_ident())
        time.sleep(0.05)  # widen the race window: a missing lock would show
        return BankAccounts(**kwargs)

    slot: ApplicationSlot[BankAccounts] = ApplicationSlot(slow_factory)
    barrier = threading.Barrier(32)
    results: list[BankAccounts] = []

    def race() -> None:
        barrier.wait()
        results.append(slot.get_or_init())

    threads = [threading.Thread(target=race) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    try:
        assert len(constructed) == 1
        assert len(results) == 32
        assert all(result is results[0] for result in results)
    finally:
        slot.close()


def test_lazy_getter_without_the_second_check_would_construct_twice() -> None:
    """Shows the race the lock guards against, so the test above can fail."""
    constructed: list[int] = []
    barrier = threading.Barrier(8)

    class UnlockedSlot(ApplicationSlot[Any]):
        def get_or_init(self, **kwargs: Any) -> Any:  # the naive version
            if self._held is None:
                barrier.wait()  # every thread has seen None
                self._construct(**kwargs)
            return self.get()

    def construct() -> object:
        constructed.append(1)
        return object()

    slot = UnlockedSlot(construct)
    threads = [threading.Thread(target=slot.get_or_init) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(constructed) == 8


def test_a_thread_never_sees_an_application_without_its_owner() -> None:
    """Readers racing the constructing thread get the application or construct, never a false fork error.

    With the application and its owner's pid published one after the other, a
    reader in between saw "constructed in process None" (210 rounds in 3,000).
    """
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows
    errors: list[BaseException] = []
    try:
        for _ in range(300):
            slot: ApplicationSlot[Any] = ApplicationSlot(lambda: object())
            start = threading.Barrier(8)

            def construct(slot: ApplicationSlot[Any] = slot, start: threading.Barrier = start) -> None:
                start.wait()
                slot.get_or_init()

            def read(slot: ApplicationSlot[Any] = slot, start: threading.Barrier = start) -> None:
                start.wait()
                while not slot.is_initialised:  # spin: look the moment it appears
                    pass
                try:
                    slot.get()
                except ApplicationForkedError as error:
                    errors.append(error)

            threads = [threading.Thread(target=construct)] + [threading.Thread(target=read) for _ in range(7)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
    finally:
        sys.setswitchinterval(switch_interval)
    assert errors == []


def test_application_is_a_context_manager(database_url: str) -> None:
    from bankaccounts.application import construct_application

    with construct_application() as application:
        account = application.open_account("Ada", "ada@example.com")
        assert application.get_account(account.id).full_name == "Ada"
    assert application.closing.is_set()


def _use_inherited_application(queue: Any) -> None:
    """Runs in a forked child: report what using the parent's application does."""
    try:
        get_application()
    except ApplicationForkedError as error:
        queue.put(("get", str(error)))
    try:
        get_or_init_application()
    except ApplicationForkedError as error:
        queue.put(("get_or_init", str(error)))
    close_application()  # must not close the parent's connections
    queue.put(("closed", lifecycle.slot.is_initialised))


@pytest.fixture
def fork_context() -> Iterator[Any]:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("os.fork() is not available on this platform")
    yield multiprocessing.get_context("fork")


def test_forked_child_refuses_the_parents_application(fork_context: Any) -> None:
    parent_app = init_application()
    account = parent_app.open_account("Ada", "ada@example.com")  # connections now in use
    queue = fork_context.Queue()
    child = fork_context.Process(target=_use_inherited_application, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
    messages = dict(queue.get(timeout=5) for _ in range(3))
    assert child.exitcode == 0
    assert "Construct the application after fork" in messages["get"]
    assert "Construct the application after fork" in messages["get_or_init"]
    assert messages["closed"] is False
    # The child did not close what the parent still uses.
    assert get_application() is parent_app
    parent_app.deposit(account.id, 10)
    assert parent_app.get_account(account.id).balance == 10
