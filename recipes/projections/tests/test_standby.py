"""A standby: a second process for the same runner waits, and takes over when the active one dies."""

from __future__ import annotations

import functools
import signal
import time
from collections.abc import Callable

import pytest
from event_log import EventStream, await_position, check_view_is_the_fold, last_position, position, write_batch
from postgres_restart import restart_postgres_server
from projection_process import ProjectionProcess

from account_views import AccountViewsRecorder
from bankaccounts.application import BankAccounts
from cookbook_testing.databases import PostgresDatabases
from cookbook_testing.processes import STOP_BOUND_SECONDS, wait_for

Start = Callable[..., ProjectionProcess]
#: The longest a takeover may take in these tests: the standby's next try of the lock
#: (every 0.2 s), then its runner's start. Measured: see the test's output.
TAKEOVER_BOUND_SECONDS = 10.0


def test_the_standby_takes_over_when_the_active_process_is_killed(
    application: BankAccounts, view: AccountViewsRecorder, start_projection: Start
) -> None:
    active = start_projection()
    standby = start_projection(standby=True)

    with EventStream(deposits=4) as stream:
        await_position(view, position(view) + 200)
        assert not standby.is_following()  # it has not built a runner
        assert stream.is_alive(), "the stream ended before the kill"

        killed_at = position(view)
        assert active.stop(signal.SIGKILL) == -signal.SIGKILL
        killed = time.monotonic()
        wait_for(standby.is_following, TAKEOVER_BOUND_SECONDS, "the standby to take over")
        following = time.monotonic() - killed
        await_position(view, killed_at + 1, timeout=TAKEOVER_BOUND_SECONDS)
        processing = time.monotonic() - killed
        stream.stop()

    await_position(view, last_position(application))
    check_view_is_the_fold(application, view)
    print(
        f"\nSIGKILL of the active process: the standby followed after {following:.2f} s,"
        f" and had moved the view after {processing:.2f} s"
    )
    assert standby.stop(signal.SIGTERM, timeout=STOP_BOUND_SECONDS) == 0


def test_a_standby_stops_at_once_on_sigterm(start_projection: Start) -> None:
    start_projection()
    standby = start_projection(standby=True)
    signalled = time.monotonic()
    assert standby.stop(signal.SIGTERM, timeout=STOP_BOUND_SECONDS) == 0
    assert time.monotonic() - signalled < 2
    assert "views: stopped while standing by: exiting 0" in standby.log()


def test_each_runner_has_its_own_lock(start_projection: Start) -> None:
    """The view's process and the process application's are active side by side."""
    start_projection(which="views")
    start_projection(which="alerts")


@pytest.mark.requires_postgresql
@pytest.mark.logs_errors("PostgreSQL restarts on purpose: both processes log the error they exit with")
def test_when_postgresql_restarts_both_exit_1_and_their_restarts_share_the_work_again(
    application: BankAccounts,
    view: AccountViewsRecorder,
    start_projection: Start,
    postgres_databases: PostgresDatabases,
) -> None:
    """A restart ends every session: the active process's lock and its standby's
    connection alike. Neither reconnects; both exit 1, and their supervisor's restarts
    find the lock free again: one takes it, the other stands by."""
    for _ in range(3):
        write_batch(application, deposits=14)
    active = start_projection()
    standby = start_projection(standby=True)
    await_position(view, last_position(application))

    restart_postgres_server(postgres_databases.admin_url)
    for process in (active, standby):
        assert wait_for(functools.partial(getattr, process, "returncode"), 30, f"{process.kind} to exit") == 1
    assert "the runner stopped on an error: exiting 1" in active.log()
    assert "could not start: exiting 1" in standby.log()

    write_batch(application, deposits=14)
    first = start_projection()
    second = start_projection(standby=True)
    await_position(view, last_position(application))
    check_view_is_the_fold(application, view)
    assert not second.is_following()
    assert first.stop(signal.SIGTERM, timeout=STOP_BOUND_SECONDS) == 0
    wait_for(second.is_following, TAKEOVER_BOUND_SECONDS, "the standby to take over")
