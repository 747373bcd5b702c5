"""The projection as its own process: catch-up, following, SIGTERM, SIGKILL, the database going away.

Every test runs ``python run_projection.py`` for real, against the test's
database (SQLite, or the kit's PostgreSQL with ``--store postgresql``), writes
events with the shared application in the test process, and waits for the
view's tracking position (a bounded poll), never for a fixed time.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from event_log import (
    FIXED_EVENTS_PER_BATCH,
    EventStream,
    account_events,
    await_position,
    check_view_is_the_fold,
    last_position,
    position,
    write_batch,
)
from postgres_restart import restart_postgres_server
from projection_process import ProjectionProcess

from account_views import AccountViewsRecorder
from bankaccounts.application import BankAccounts, construct_application
from bankaccounts.config import ConfigurationError, DatabaseConfig
from conftest import read_view
from cookbook_testing.databases import PostgresDatabases, count_rows, server_backends
from cookbook_testing.faults import FaultProxy
from cookbook_testing.processes import STOP_BOUND_SECONDS, wait_for
from run_projection import projection_env

Start = Callable[..., ProjectionProcess]


def test_catches_up_from_a_cold_start_then_follows_new_events(
    application: BankAccounts, view: AccountViewsRecorder, start_projection: Start
) -> None:
    for _ in range(20):
        write_batch(application, deposits=44)
    last = last_position(application)
    assert last == 20 * (44 + FIXED_EVENTS_PER_BATCH)

    started = time.monotonic()
    projection = start_projection()
    seconds = await_position(view, last)
    print(
        f"\ncaught up {last} events in {time.monotonic() - started:.2f} s from the start ({seconds:.2f} s once ready)"
    )
    check_view_is_the_fold(application, view)
    wait_for(lambda: "caught up to position" in projection.log(), 10, "the caught-up line")

    # New events, one command at a time, are followed (LISTEN/NOTIFY, or SQLite's poll).
    lags = []
    account = application.open_account("Ada Lovelace", "ada@example.com")
    other = application.open_account("Grace Hopper", "grace@example.com")
    for amount in (100, 250, 75):
        application.deposit(account.id, amount)
        written = time.monotonic()
        await_position(view, last_position(application), timeout=10)
        lags.append(time.monotonic() - written)
    application.withdraw(account.id, 40)
    application.transfer(account.id, other.id, 60)
    await_position(view, last_position(application), timeout=10)
    check_view_is_the_fold(application, view)
    assert view.balances()[account.id] == 325 and view.balances()[other.id] == 60
    print(f"one deposit, committed to seen in the view: {', '.join(f'{lag * 1000:.0f} ms' for lag in lags)}")

    assert projection.stop(signal.SIGTERM, timeout=STOP_BOUND_SECONDS) == 0
    assert f"stopped at position {last_position(application)}: exiting 0" in projection.log()


def test_sigterm_mid_stream_commits_the_event_in_hand_and_exits_0(
    application: BankAccounts, view: AccountViewsRecorder, start_projection: Start
) -> None:
    for _ in range(40):
        write_batch(application, deposits=94)
    last = last_position(application)
    projection = start_projection()
    await_position(view, 300)

    signalled = time.monotonic()
    assert projection.stop(signal.SIGTERM, timeout=STOP_BOUND_SECONDS) == 0
    stop_seconds = time.monotonic() - signalled
    stopped_at = position(view)
    print(f"\nSIGTERM at about 300 of {last}: exited 0 in {stop_seconds:.2f} s at position {stopped_at}")
    assert stopped_at < last, "the projection finished before the signal: nothing was mid-stream"
    assert f"stopped at position {stopped_at}: exiting 0" in projection.log()
    # The rows are exactly those of the events up to the committed position.
    check_view_is_the_fold(application, view, upto=stopped_at)

    # Started again, it resumes from there and finishes.
    again = start_projection()
    logged = re.search(r"views: following BankAccounts from position (\d+);", again.log())
    assert logged is not None
    # Its runner starts processing as it is built, just before that line is logged:
    # the position logged is where it stopped, or a few events past it.
    assert stopped_at <= int(logged[1]) <= last
    await_position(view, last)
    check_view_is_the_fold(application, view)


def await_its_sessions_ended(database_url: str, process: ProjectionProcess) -> None:
    """After a SIGKILL, PostgreSQL may still be finishing what the process sent last
    (a COMMIT, whose answer nobody reads): its position is final once its sessions,
    labelled with its pid, have ended. SQLite commits inside the process: nothing outlives it."""
    if DatabaseConfig.from_url(database_url).store != "postgresql":
        return
    label = f"bankaccounts-{process.pid}"
    wait_for(
        lambda: all(name != label for _, name in server_backends(database_url)), 30, f"the sessions of {label} to end"
    )


def test_sigkill_in_a_stream_then_restart_applies_every_event_exactly_once(
    application: BankAccounts, view: AccountViewsRecorder, start_projection: Start, database_url: str
) -> None:
    # A writer keeps recording events the whole time, from its own application.
    with EventStream(deposits=4) as stream:
        kills = []
        for _ in range(3):
            projection = start_projection()
            await_position(view, position(view) + 200)
            assert stream.is_alive(), "the stream ended before the kill"
            assert projection.stop(signal.SIGKILL) == -signal.SIGKILL
            await_its_sessions_ended(database_url, projection)
            killed_at = position(view)
            kills.append((killed_at, last_position(application)))
            # What was committed is whole: the rows are the fold of the events up to the position.
            check_view_is_the_fold(application, view, upto=killed_at)
        stream.stop()

    start_projection()
    last = last_position(application)
    await_position(view, last)
    check_view_is_the_fold(application, view)
    # Nothing lost, nothing counted twice: one count per account event in the log.
    assert sum(day.events for day in view.daily_totals()) == account_events(application)
    assert account_events(application) == stream.batches * (4 + FIXED_EVENTS_PER_BATCH) == last
    # Every kill came while the writer still had events to write (the log grew past it);
    # the view may have caught up with the log at the moment of a kill.
    assert all(killed_at < last for killed_at, _ in kills), f"a kill came after the stream was done: {kills}"
    print(f"\n{stream.batches} batches, {last} events; SIGKILL at (position, log's last): {kills}")


def exit_through_a_fault(
    start_projection: Start,
    proxy: FaultProxy,
    fault: Callable[[], None],
    heal: Callable[[], None],
    batches: int,
    extra_env: dict[str, str] | None = None,
) -> tuple[int | None, str, float]:
    """A projection following through ``proxy`` until ``fault``, while the test's writer
    and its reading of the view reach the server directly and write on meanwhile.
    Once it has exited: ``heal``, and a new process resumes until the view equals the
    fold, and stops on SIGTERM (before the proxy closes, which would cut its
    connections). Returns the first one's exit status, its log, and the seconds from
    the fault to its exit."""
    store = DatabaseConfig.from_url(proxy.upstream_url).eventsourcing_env()
    with construct_application(store) as writer, read_view(proxy.upstream_url) as seen:
        for _ in range(batches):
            write_batch(writer, deposits=14)
        projection = start_projection(database_url=proxy.url, extra_env=extra_env)
        await_position(seen, last_position(writer))

        fault()
        began = time.monotonic()
        write_batch(writer, deposits=14)  # written meanwhile, straight to the server
        returncode = wait_for(lambda: projection.returncode, 30, "the projection to exit")
        exit_seconds = time.monotonic() - began

        heal()
        resumed = start_projection(database_url=proxy.url)
        await_position(seen, last_position(writer))
        check_view_is_the_fold(writer, seen)
        assert resumed.stop(signal.SIGTERM, timeout=STOP_BOUND_SECONDS) == 0
    return returncode, projection.log(), exit_seconds


@pytest.mark.requires_a_database_server
@pytest.mark.logs_errors("the database goes away on purpose: the process logs the error it exits with")
def test_when_the_database_goes_away_it_exits_1_and_its_restart_resumes(
    start_projection: Start, database_behind_a_fault_proxy: FaultProxy
) -> None:
    """The proxy cuts every connection and refuses new ones, as a PostgreSQL restart does to its clients."""
    proxy = database_behind_a_fault_proxy
    returncode, log, exit_seconds = exit_through_a_fault(start_projection, proxy, proxy.go_down, proxy.come_back, 5)
    assert returncode == 1
    assert "the runner stopped on an error: exiting 1" in log
    print(f"\nthe database went away: the projection exited 1 after {exit_seconds:.2f} s")


def test_the_view_can_live_in_a_database_of_its_own(
    application: BankAccounts, start_projection: Start, make_database_url: Callable[[], str], database_url: str
) -> None:
    """``VIEW_DATABASE_URL``: the view's tables and position in another database (the
    one of the service that queries them), the events followed where they are."""
    view_url = make_database_url()
    for _ in range(3):
        write_batch(application, deposits=14)
    start_projection(extra_env={"VIEW_DATABASE_URL": view_url})
    with read_view(view_url) as seen:
        await_position(seen, last_position(application))
        write_batch(application, deposits=14)  # followed as it comes
        await_position(seen, last_position(application))
        check_view_is_the_fold(application, seen)
        assert count_rows(view_url, "account_balances") == len(seen.balances()) > 0
    assert count_rows(database_url, "account_balances") == 0, "the view wrote beside the events"


@pytest.mark.requires_a_database_server
def test_when_the_database_hangs_it_exits_1_within_the_bound_and_its_restart_resumes(
    start_projection: Start, database_behind_a_fault_proxy: FaultProxy
) -> None:
    """The proxy stops passing bytes either way, as a frozen host does: no error ever
    reaches the process, only silence. It exits 1 once one of its waits has lasted
    ``REQUEST_TIMEOUT`` + 5 s (2 + 5 here), whatever it was doing."""
    proxy = database_behind_a_fault_proxy
    returncode, log, exit_seconds = exit_through_a_fault(
        start_projection, proxy, proxy.freeze, proxy.thaw, 3, extra_env={"REQUEST_TIMEOUT": "2"}
    )
    assert returncode == 1
    assert "the database did not answer" in log
    assert 7 <= exit_seconds < 7 + 5, exit_seconds
    print(f"\nthe database hung: the projection exited 1 after {exit_seconds:.2f} s")


@pytest.mark.requires_postgresql
@pytest.mark.logs_errors("PostgreSQL restarts on purpose: the process logs the error it exits with")
def test_when_postgresql_restarts_it_exits_1_and_its_restart_resumes(
    application: BankAccounts,
    view: AccountViewsRecorder,
    start_projection: Start,
    postgres_databases: PostgresDatabases,
) -> None:
    for _ in range(5):
        write_batch(application, deposits=14)
    projection = start_projection()
    await_position(view, last_position(application))

    began = time.monotonic()
    seconds = restart_postgres_server(postgres_databases.admin_url)
    returncode = wait_for(lambda: projection.returncode, 30, "the projection to exit")
    exited = time.monotonic() - began
    assert returncode == 1
    assert "the runner stopped on an error: exiting 1" in projection.log()
    print(f"\nPostgreSQL restarted in {seconds:.2f} s: the projection had exited 1 by {exited:.2f} s")

    # The writer's and the view's pools find their connections gone: eventsourcing retries.
    write_batch(application, deposits=14)
    start_projection()
    await_position(view, last_position(application))
    check_view_is_the_fold(application, view)


@pytest.mark.requires_a_database_server
@pytest.mark.logs_errors("the database is down on purpose: the process logs why it cannot start")
def test_started_while_the_database_is_down_it_exits_1(
    recipe_dir: Path, database_behind_a_fault_proxy: FaultProxy
) -> None:
    proxy = database_behind_a_fault_proxy
    proxy.go_down()
    process = ProjectionProcess(recipe_dir, {"DATABASE_URL": proxy.url})
    started = time.monotonic()
    process.start(until=lambda: True)  # not ready, ever: it must exit
    try:
        returncode = wait_for(lambda: process.returncode, 30, "the projection to exit")
        seconds = time.monotonic() - started
    finally:
        process.kill()
    assert returncode == 1
    assert "could not start: exiting 1" in process.log()
    print(f"\nstarted with the database down: exited 1 after {seconds:.2f} s")


def test_behind_pgbouncer_the_runner_refuses_to_start() -> None:
    """Its subscription LISTENs, which needs a session of its own."""
    with pytest.raises(ConfigurationError, match="the projection runner connects to PostgreSQL itself"):
        projection_env({"DATABASE_URL": "postgresql://app@127.0.0.1:6432/bank", "PGBOUNCER_POOL_MODE": "transaction"})
