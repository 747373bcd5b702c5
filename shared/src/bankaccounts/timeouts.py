"""``REQUEST_TIMEOUT``: one knob for how long a request may take.

Whole seconds, default 10. The limits that depend on how long a client will
wait for an answer all come from it:

- write conflicts are retried for at most ``REQUEST_TIMEOUT`` seconds, then
  answered 409 (``bankaccounts.retry``);
- PostgreSQL cancels a statement that runs, or waits for a lock, longer than
  ``REQUEST_TIMEOUT``, and ends a session left idle in a transaction for
  longer than the servers' limit (``postgres_session_limits``): the request
  answers 503 without losing its worker, and a stuck client's locks go;
- the servers end a request that has run ``REQUEST_TIMEOUT`` plus
  ``SERVER_TIMEOUT_MARGIN_SECONDS`` (uWSGI's ``harakiri``, gunicorn's
  ``timeout``). That is the last resort for a database that hangs: a client
  library waits for ever for the answer to a query the server has accepted,
  and neither a statement timeout nor TCP keepalive helps when the database's
  machine still acknowledges every packet.

How a server ends such a request: it sends the worker ``SERVER_TIMEOUT_SIGNAL``
(SIGABRT), and the recipes turn that signal into ``RequestTimeoutError``,
raised in the request where it waits. The request answers 503, like any
other "the store is unavailable" error, and the worker exits once it has
answered, to be replaced by a fresh one (its connections may be mid-query).
gunicorn calls the ``worker_abort`` hook (``gunicorn.conf.py`` raises
there); uWSGI sends the signal as its graceful harakiri, and
:mod:`bankaccounts.uwsgi_signals` installs ``end_request_on_server_timeout``
in every worker.
A worker that is still busy a second later is killed (SIGKILL) by either
server: its client's connection is closed with no answer.

The limits that do not depend on clients are constants where they are used:
``POSTGRES_CONNECTION_WAIT_SECONDS`` (``bankaccounts.config``) and
``READY_TIMEOUT_SECONDS`` (``bankaccounts.readiness``).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from types import FrameType
from typing import NoReturn

from bankaccounts.config import ConfigurationError

REQUEST_TIMEOUT_ENV = "REQUEST_TIMEOUT"
DEFAULT_REQUEST_TIMEOUT_SECONDS = 10
MAX_REQUEST_TIMEOUT_SECONDS = 3600
#: How much longer than the request budget a server lets a request run before
#: it stops the worker: long enough for a request whose conflict retries used
#: the whole budget to write its answer. ``uwsgi.ini`` repeats this number.
SERVER_TIMEOUT_MARGIN_SECONDS = 5
#: What uWSGI and gunicorn send a worker whose request ran out of time.
SERVER_TIMEOUT_SIGNAL = signal.SIGABRT


class RequestTimeoutError(Exception):
    """The server's time limit for this request ran out while it waited (a database that hangs)."""


def request_timeout(environ: Mapping[str, str] | None = None) -> int:
    """``REQUEST_TIMEOUT`` in seconds; unset or empty means the default."""
    environ = os.environ if environ is None else environ
    raw = environ.get(REQUEST_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_REQUEST_TIMEOUT_SECONDS
    seconds = int(raw) if raw.isascii() and raw.isdigit() else 0
    if not 1 <= seconds <= MAX_REQUEST_TIMEOUT_SECONDS:
        msg = (
            f"{REQUEST_TIMEOUT_ENV} must be a whole number of seconds from 1 to "
            f"{MAX_REQUEST_TIMEOUT_SECONDS}, not {raw!r}"
        )
        raise ConfigurationError(msg)
    return seconds


def server_timeout(environ: Mapping[str, str] | None = None) -> int:
    """How long uWSGI and gunicorn let one request run before they stop its worker."""
    return request_timeout(environ) + SERVER_TIMEOUT_MARGIN_SECONDS


def raise_request_timeout() -> NoReturn:
    """End the current request: for gunicorn's ``worker_abort`` hook, which runs in the
    signal handler; gunicorn has already marked the worker to exit after the request."""
    msg = f"the request ran out of time: the server's limit is REQUEST_TIMEOUT + {SERVER_TIMEOUT_MARGIN_SECONDS} s"
    raise RequestTimeoutError(msg)


def end_request_on_server_timeout(signum: int, frame: FrameType | None) -> NoReturn:
    """uWSGI's graceful harakiri: leave once this request is answered (SIGHUP is uWSGI's
    "finish the request, then exit" for a worker), and end the request now."""
    os.kill(os.getpid(), signal.SIGHUP)
    raise_request_timeout()


def postgres_session_limits(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """PostgreSQL settings for each session of a web worker, in milliseconds.

    The database enforces them, so they help while it still works: a query
    slowed by load, a lock another session holds. (When it hangs, only the
    servers' limit helps.)
    """
    request_ms = request_timeout(environ) * 1000
    return {
        "statement_timeout": str(request_ms),
        "lock_timeout": str(request_ms),
        "idle_in_transaction_session_timeout": str(server_timeout(environ) * 1000),
    }


#: eventsourcing_cassandra's settings (its defaults: 15 s, 10 s, 30 s): the longest
#: it waits for one statement; how old a transaction whose writer went silent must
#: be before a reader may abort it; how long a commit may keep trying to append to
#: the application's notification log.
CASSANDRA_REQUEST_TIMEOUT_ENV = "CASSANDRA_REQUEST_TIMEOUT"
CASSANDRA_TX_TIMEOUT_ENV = "CASSANDRA_TX_TIMEOUT"
CASSANDRA_COMMIT_TIMEOUT_ENV = "CASSANDRA_COMMIT_TIMEOUT"


def cassandra_limits(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Settings for ``eventsourcing_cassandra`` in a web worker, in seconds.

    - No statement waits, and no commit keeps trying, longer than
      ``REQUEST_TIMEOUT``: a node that does not answer is a 503 from the
      application before the server's limit ends the worker.
    - A transaction whose writer died (a killed worker: there is no session
      whose end would end it) holds the next versions of its aggregates for
      half of ``REQUEST_TIMEOUT``. Then a writer that needs them aborts it
      and goes on within its own budget, instead of losing every race until
      the budget runs out (409). Aborting is safe at any age: the store
      decides commit or abort once, and a slow writer whose transaction was
      aborted finds its commit refused and runs the command again.

    A setting given in the environment wins.
    """
    environ = os.environ if environ is None else environ
    seconds = request_timeout(environ)
    limits = {
        CASSANDRA_REQUEST_TIMEOUT_ENV: str(seconds),
        CASSANDRA_TX_TIMEOUT_ENV: str(seconds / 2),
        CASSANDRA_COMMIT_TIMEOUT_ENV: str(seconds),
    }
    return {name: value for name, value in limits.items() if not environ.get(name, "").strip()}
