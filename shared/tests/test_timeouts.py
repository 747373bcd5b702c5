from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bankaccounts.application import construct_application
from bankaccounts.config import ConfigurationError, DatabaseConfig
from bankaccounts.timeouts import (
    REQUEST_TIMEOUT_ENV,
    SERVER_TIMEOUT_SIGNAL,
    RequestTimeoutError,
    cassandra_limits,
    end_request_on_server_timeout,
    raise_request_timeout,
    request_timeout,
    server_timeout,
)
from bankaccounts.web import store_unavailable


@pytest.mark.parametrize(("value", "seconds"), [(None, 10), ("", 10), (" 3 ", 3), ("1", 1), ("3600", 3600)])
def test_request_timeout_is_whole_seconds_with_a_default(value: str | None, seconds: int) -> None:
    environ = {} if value is None else {"REQUEST_TIMEOUT": value}
    assert request_timeout(environ) == seconds
    assert server_timeout(environ) == seconds + 5


@pytest.mark.parametrize("value", ["0", "-1", "2.5", "ten", "3601", "\u00b2"])
def test_a_request_timeout_that_is_not_whole_seconds_in_range_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="REQUEST_TIMEOUT must be a whole number of seconds"):
        request_timeout({"REQUEST_TIMEOUT": value})


def test_a_request_that_ran_out_of_time_is_the_store_being_unavailable() -> None:
    """So every recipe answers it as it answers a database that is down: 503, Retry-After."""
    with pytest.raises(RequestTimeoutError) as info:
        raise_request_timeout()
    assert store_unavailable(info.value)
    try:
        try:
            raise_request_timeout()
        except RequestTimeoutError as error:
            raise RuntimeError("a framework's own error") from error
    except RuntimeError as wrapped:
        assert store_unavailable(wrapped)


@pytest.fixture
def sighups() -> Iterator[list[int]]:
    received: list[int] = []
    previous = signal.signal(signal.SIGHUP, lambda signum, frame: received.append(signum))
    yield received
    signal.signal(signal.SIGHUP, previous)


def test_under_uwsgi_the_timeout_signal_ends_the_request_and_then_the_worker(sighups: list[int]) -> None:
    """uWSGI's graceful harakiri: RequestTimeoutError in the request, and SIGHUP to the worker
    itself, which uWSGI's worker takes as "exit once this request is answered"."""
    with pytest.raises(RequestTimeoutError):
        end_request_on_server_timeout(SERVER_TIMEOUT_SIGNAL, None)
    assert sighups == [signal.SIGHUP]


def test_uwsgi_ini_s_shared_import_installs_the_timeout_handler_in_workers_only() -> None:
    """In a process of its own (the import holds stop signals, for good), standing in for
    uWSGI's master: it keeps SIGABRT's default; what it forks has the handler."""
    code = """
import os, signal, sys, types
sys.modules["uwsgi"] = types.SimpleNamespace(opt={"master-fifo": b"/nonexistent/master.fifo"}, masterpid=os.getpid)
import bankaccounts.uwsgi_signals
handler = signal.getsignal
name = lambda: "default" if handler(signal.SIGABRT) == signal.SIG_DFL else handler(signal.SIGABRT).__name__
reader, writer = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(writer, name().encode())
    os._exit(0)
os.close(writer)
os.waitpid(pid, 0)
print(name(), os.read(reader, 1000).decode())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert result.stdout.split() == ["default", end_request_on_server_timeout.__name__]


def test_session_limits_are_for_postgresql_only() -> None:
    environ = {"REQUEST_TIMEOUT": "3"}
    assert DatabaseConfig.from_url("sqlite:////tmp/x.sqlite3").connect_args(environ) == {}
    assert DatabaseConfig.from_url("postgresql://bank@127.0.0.1/bank").connect_args(environ) == {
        "connect_timeout": "2",
        "options": "-c statement_timeout=3000 -c lock_timeout=3000 -c idle_in_transaction_session_timeout=8000",
    }


@pytest.mark.requires_postgresql
def test_postgresql_applies_them_and_a_lock_wait_ends_as_the_store_being_unavailable(database_url: str) -> None:
    import psycopg  # only where the store is PostgreSQL

    limits: dict[str, Any] = DatabaseConfig.from_url(database_url).connect_args({"REQUEST_TIMEOUT": "1"})
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("CREATE TABLE IF NOT EXISTS lock_probe (id int)")
        with holder.transaction(), psycopg.connect(database_url, autocommit=True, **limits) as waiter:
            holder.execute("LOCK TABLE lock_probe IN ACCESS EXCLUSIVE MODE")
            assert waiter.execute("SHOW statement_timeout").fetchone() == ("1s",)
            started = time.monotonic()
            with pytest.raises((psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled)) as info:
                waiter.execute("SELECT count(*) FROM lock_probe")
            assert time.monotonic() - started < 3.0
    assert store_unavailable(info.value)  # so a web recipe answers 503


#: eventsourcing's PostgreSQL recorder tries a statement that failed 10 times, 0.2 s apart.
EVENTSOURCING_ATTEMPTS, EVENTSOURCING_PAUSE = 10, 0.2


@pytest.mark.requires_postgresql
def test_the_applications_own_postgresql_store_waits_for_its_table_lock_no_longer_than_the_request_timeout(
    database_url: str, events_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg  # only where the store is PostgreSQL
    from eventsourcing.postgres import PostgresFactory

    monkeypatch.setenv(REQUEST_TIMEOUT_ENV, "1")
    with construct_application() as app:
        account = app.open_account("Ada", "ada@example.com")
        assert isinstance(app.factory, PostgresFactory)
        with app.factory.datastore.get_connection() as connection:
            assert connection.execute("SHOW statement_timeout").fetchone() == {"statement_timeout": "1s"}
        with psycopg.connect(database_url, autocommit=True) as holder, holder.transaction():
            # Without the store's limits the deposit would wait for ever: end the hold after 30 s.
            holder.execute("SET LOCAL idle_in_transaction_session_timeout = '30s'")
            # Readers pass; every writer's table lock (eventsourcing's, for notification order) waits.
            holder.execute(f"LOCK TABLE {events_table} IN EXCLUSIVE MODE")
            started = time.monotonic()
            with pytest.raises(Exception) as info:
                app.deposit(account.id, 100)
            waited = time.monotonic() - started
        assert app.get_account(account.id).balance == 0
    assert store_unavailable(info.value), repr(info.value)  # so a web recipe answers 503
    # Each of eventsourcing's attempts waits 1 s: the server's limit (REQUEST_TIMEOUT + 5 s) ends a
    # request sooner; a queue worker, which has no such limit, waits this long at most.
    assert waited < EVENTSOURCING_ATTEMPTS * (1 + EVENTSOURCING_PAUSE) + 3


def test_cassandra_statements_wait_no_longer_than_the_request_timeout() -> None:
    assert cassandra_limits({}) == {
        "CASSANDRA_REQUEST_TIMEOUT": "10",
        "CASSANDRA_TX_TIMEOUT": "5.0",  # a dead writer's transaction, aborted within half the budget
        "CASSANDRA_COMMIT_TIMEOUT": "10",
    }
    assert cassandra_limits({REQUEST_TIMEOUT_ENV: "3"}) == {
        "CASSANDRA_REQUEST_TIMEOUT": "3",
        "CASSANDRA_TX_TIMEOUT": "1.5",
        "CASSANDRA_COMMIT_TIMEOUT": "3",
    }
    # The store's own setting, when given, is the user's to keep.
    assert cassandra_limits({REQUEST_TIMEOUT_ENV: "3", "CASSANDRA_REQUEST_TIMEOUT": "20"}) == {
        "CASSANDRA_TX_TIMEOUT": "1.5",
        "CASSANDRA_COMMIT_TIMEOUT": "3",
    }
