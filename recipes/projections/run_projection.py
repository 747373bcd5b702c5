"""An event-processing process: ``python run_projection.py views`` or ``... alerts``.

Each runs ONE runner of eventsourcing's, following the ``BankAccounts`` events
in ``DATABASE_URL``:

- ``views``: the ``AccountViews`` projection (``account_views``), whose SQL
  tables live in the same database (or in ``VIEW_DATABASE_URL``'s), run by a
  ``ProjectionRunner``;
- ``alerts``: the ``LargeWithdrawals`` process application
  (``large_withdrawals``), an event-sourced application of its own, run by an
  ``EventSourcedProjectionRunner``. On PostgreSQL its tables are in the same
  database; on SQLite in a file of its own beside it
  (``<name>-largewithdrawals.sqlite3``), because eventsourcing's SQLite store
  keeps one events table and one tracking table per file.

The runner is constructed here, after the process started (never inherited
across a fork: its connections and threads are this process's own).

- **Start.** The runner reads its tracking position, subscribes to the events
  after it (LISTEN/NOTIFY on PostgreSQL; on SQLite a poll, ``sqlite_polling``),
  and processes them one by one in its own thread, each in one transaction with
  the new position. One line is logged with its position once it has started
  (its thread may have processed a few events by then) and the log's last
  notification; another when it has caught up with that one.
- **SIGTERM or SIGINT.** The runner stops: the event in hand is processed and
  committed, those fetched after it are left for the next start, and the
  process exits 0 (logged with the position). The tests hold it to 15 s, the
  cookbook's bound for every server and worker (it took 0.02 to 0.27 s): the
  event in hand is one short transaction, each statement of which PostgreSQL
  ends after ``REQUEST_TIMEOUT`` (10 s by default, ``bankaccounts.timeouts``).
- **Anything else that stops the runner** (the database went away, a statement
  failed) is logged with its traceback, and the process exits 1 at once, for its
  supervisor to restart it: it does not reconnect by itself. Its restart resumes
  from the committed position, so nothing is lost or applied twice. While the
  database is down, a start fails at its first connection (the standby lock's,
  which waits up to ``POSTGRES_CONNECTION_WAIT_SECONDS`` for it): exit 1.
- **A database that hangs** answers nothing, not even with its statement
  timeout, and psycopg would wait for ever. Every wait of the process's own
  (the lock, the position, the runner's start and stop) is watched
  (``database_watchdog``): one that lasts ``REQUEST_TIMEOUT`` + 5 s ends the
  process with status 1, for its supervisor to restart it.
- **Standby.** Before it builds its runner, the process takes the runner's lock
  (``standby_lock``), and holds it until it exits. Another process started for
  the same runner logs that it is standing by, tries the lock every 0.2 s,
  and takes over when the active one's lock is freed (by its death, SIGKILL
  included). Two active processes of one runner would be wrong: see the guide
  page.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any

from eventsourcing.persistence import TrackingRecorder
from eventsourcing.projection import BaseProjectionRunner, EventSourcedProjectionRunner, ProjectionRunner

from account_views import AccountViews, AccountViewsRecorder
from bankaccounts.application import BankAccounts
from bankaccounts.config import (
    PGBOUNCER_POOL_MODE,
    ConfigurationError,
    DatabaseConfig,
    application_env,
    label_postgres_connections,
    pgbouncer_pool_mode,
)
from bankaccounts.timeouts import request_timeout
from database_watchdog import DatabaseWatchdog
from large_withdrawals import LargeWithdrawals
from standby_lock import NoLock, StandbyLock, standby_lock, wait_for_lock

logger = logging.getLogger("projection")

#: How often the main thread looks at the runner: at its position too, until it has
#: caught up (one indexed query each time), so that the rate it logs is close.
CATCHING_UP_CHECK_SECONDS = 0.05
CHECK_INTERVAL_SECONDS = 0.5
#: Beyond a working database's longest answer (its statement_timeout, ``REQUEST_TIMEOUT``):
#: a wait this long is a database that hangs (``database_watchdog``).
DATABASE_WAIT_MARGIN_SECONDS = 5


#: Where the view's tables and position live, if not beside the events (a database
#: of the service that queries them, for example); read by the ``views`` runner only.
VIEW_DATABASE_URL_ENV = "VIEW_DATABASE_URL"


def view_database_url(environ: Mapping[str, str]) -> str:
    """``VIEW_DATABASE_URL``, or "" when the view lives beside the events."""
    return environ.get(VIEW_DATABASE_URL_ENV, "").strip()


def view_environ(environ: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """``environ`` with ``DATABASE_URL`` the view's: ``VIEW_DATABASE_URL`` when set."""
    environ = os.environ if environ is None else environ
    view_url = view_database_url(environ)
    return {**environ, "DATABASE_URL": view_url} if view_url else environ


def projection_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The store's settings from ``DATABASE_URL`` (``bankaccounts.config``), for the
    followed application and the projections alike; on SQLite, with the polling
    subscription, and a file of its own for ``LargeWithdrawals``. With
    ``VIEW_DATABASE_URL``, the view's settings from that URL, under its name:
    eventsourcing reads ``ACCOUNTVIEWS_<SETTING>`` before ``<SETTING>``."""
    environ = os.environ if environ is None else environ
    if mode := pgbouncer_pool_mode(environ):
        # A subscription LISTENs, which needs a session of its own; the views'
        # connections carry their limits as startup options, which PgBouncer refuses.
        msg = f"{PGBOUNCER_POOL_MODE}={mode}: the projection runner connects to PostgreSQL itself"
        raise ConfigurationError(msg)
    env = application_env(environ=environ)
    if view_database_url(environ):
        view_env = application_env(environ=view_environ(environ))
        env.update({f"{AccountViews.name.upper()}_{key}": value for key, value in view_env.items()})
    config = DatabaseConfig.from_env(environ)
    if config.store == "sqlite":
        assert config.sqlite_path is not None
        env["APPLICATION_RECORDER_TOPIC"] = "sqlite_polling:PollingSQLiteApplicationRecorder"
        # Read by LargeWithdrawals only: eventsourcing prefixes a setting with the application's name.
        alerts_file = config.sqlite_path.with_name(f"{config.sqlite_path.stem}-largewithdrawals.sqlite3")
        env["LARGEWITHDRAWALS_SQLITE_DBNAME"] = str(alerts_file)
    return env


def view_class(environ: Mapping[str, str] | None = None) -> type[AccountViewsRecorder]:
    """The view recorder of the store the view is in (imported only when chosen)."""
    if DatabaseConfig.from_env(view_environ(environ)).store == "postgresql":
        from postgres_views import PostgresAccountViews

        return PostgresAccountViews
    from sqlite_views import SQLiteAccountViews

    return SQLiteAccountViews


Runner = BaseProjectionRunner[BankAccounts]


def start_views() -> ProjectionRunner[BankAccounts, AccountViewsRecorder]:
    return ProjectionRunner(
        application_class=BankAccounts,
        projection_class=AccountViews,
        view_class=view_class(),
        env=projection_env(),
    )


class ProcessApplicationRunner(EventSourcedProjectionRunner[BankAccounts, LargeWithdrawals]):
    """eventsourcing's runner, whose exit leaves the process application open.

    eventsourcing 9.5's ``EventSourcedProjectionRunner.__exit__`` closes the
    process application first, and only then stops the runner and joins its
    processing thread, which may still be recording the event in hand: on a
    SIGTERM that event could fail on a closed connection. Here the exit stops and
    joins first (and closes the followed application); ``close_tracking`` closes
    the process application after, as it closes a view's connections.
    """

    def __exit__(self, *exc_info: Any) -> None:
        BaseProjectionRunner.__exit__(self, *exc_info)


def start_alerts() -> ProcessApplicationRunner:
    return ProcessApplicationRunner(
        application_class=BankAccounts,
        projection_class=LargeWithdrawals,
        env=projection_env(),
    )


#: What ``python run_projection.py NAME`` runs.
RUNNERS = {"views": start_views, "alerts": start_alerts}


def tracking_recorder(runner: Runner) -> TrackingRecorder:
    """Where the runner's position is: the view, or the process application's recorder."""
    if isinstance(runner, ProjectionRunner):
        view: TrackingRecorder = runner.view
        return view
    assert isinstance(runner, EventSourcedProjectionRunner)
    recorder: TrackingRecorder = runner.projection.recorder
    return recorder


def close_tracking(runner: Runner) -> None:
    """Close the view's or the process application's connections (the runner leaves them open)."""
    if isinstance(runner, ProjectionRunner):
        runner.view.datastore.close()
    else:
        assert isinstance(runner, EventSourcedProjectionRunner)
        runner.projection.close()


def position(runner: Runner) -> int:
    return tracking_recorder(runner).max_tracking_id(runner.app_name) or 0


def follow(runner: Runner, name: str, lock: StandbyLock, watchdog: DatabaseWatchdog) -> None:
    """Until the runner stops: log once when it has caught up; raise what stopped it,
    or the loss of the lock's connection (another process may be active now)."""
    with watchdog.waiting("the position to start from"):
        started, start_position = time.monotonic(), position(runner)
        last = runner.app.recorder.max_notification_id() or 0
    logger.info("%s: following %s from position %d; the log's last is %d", name, runner.app_name, start_position, last)
    caught_up = False
    while not runner.is_interrupted.is_set():
        # Returns when the runner stops, or after the timeout; raises the runner's error, if any.
        runner.run_forever(timeout=CHECK_INTERVAL_SECONDS if caught_up else CATCHING_UP_CHECK_SECONDS)
        with watchdog.waiting("the lock's check"):
            lock.check()
        if caught_up:
            continue
        with watchdog.waiting("the position"):
            caught_up = position(runner) >= last
        if caught_up:
            seconds = time.monotonic() - started
            rate = (last - start_position) / seconds if seconds else 0.0
            logger.info("caught up to position %d in %.2f s (%.0f events/s)", last, seconds, rate)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in RUNNERS:
        print(f"usage: python run_projection.py {{{','.join(RUNNERS)}}}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(process)d %(levelname)s %(message)s")
    stop_requested = threading.Event()
    runner: Runner | None = None

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        # Only sets events: safe whatever the main thread is doing.
        stop_requested.set()
        if runner is not None:
            runner.stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    name = argv[0]
    watchdog = DatabaseWatchdog(request_timeout() + DATABASE_WAIT_MARGIN_SECONDS)
    lock: StandbyLock = NoLock()
    try:
        label_postgres_connections()
        with watchdog.waiting("the lock"):
            lock = standby_lock(name)
            acquired = lock.try_acquire()
        if not acquired:
            logger.info("%s: standing by: another process holds the lock", name)
            if not wait_for_lock(lock, stop_requested, watchdog.waiting):
                logger.info("%s: stopped while standing by: exiting 0", name)
                lock.release()
                return 0
            logger.info("%s: took the lock: starting", name)
        with watchdog.waiting("the runner's start"):
            runner = RUNNERS[name]()
    except Exception:
        logger.exception("could not start: exiting 1")
        lock.release()
        return 1
    if stop_requested.is_set():  # a signal that came while the runner was being built
        runner.stop()
    try:
        with runner:
            try:
                follow(runner, name, lock, watchdog)
            finally:
                # Until the process exits: the runner's exit commits the event in hand.
                watchdog.begin("the stop")
        logger.info("stopped at position %d: exiting 0", position(runner))
    except Exception:
        logger.exception("the runner stopped on an error: exiting 1")
        return 1
    finally:
        close_tracking(runner)
        lock.release()  # last: nothing of this runner's is still writing
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
