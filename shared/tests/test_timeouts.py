from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bankaccounts.config import ConfigurationError
from bankaccounts.timeouts import (
    SERVER_TIMEOUT_SIGNAL,
    RequestTimeoutError,
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


def test_uwsgi_ini_s_shared_import_installs_the_timeout_handler() -> None:
    """In a process of its own: the import holds stop signals across forks, for good."""
    code = "import signal, bankaccounts.uwsgi_signals; print(signal.getsignal(signal.SIGABRT).__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert result.stdout.strip() == end_request_on_server_timeout.__name__
