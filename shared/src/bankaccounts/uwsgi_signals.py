"""Imported by ``uwsgi.ini`` in the master (``shared-import``), and so present in
every worker uWSGI forks:

- each worker starts with SIGHUP and SIGTERM held, until ``hook-accepting``
  releases them. Why: :mod:`bankaccounts.prefork_signals`;
- a stop or reload that reaches the master while it forks a worker reaches
  that worker too (``stop_the_new_worker_too``);
- in each worker, uWSGI's graceful harakiri signal ends a request that ran out
  of time with a 503. Why: :mod:`bankaccounts.timeouts`. (The master keeps
  the signal's default action.)
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, cast

from bankaccounts.prefork_signals import UWSGI_STOP_SIGNALS, hold_in_forked_children
from bankaccounts.timeouts import SERVER_TIMEOUT_SIGNAL, end_request_on_server_timeout


def stop_the_new_worker_too(arrived: set[signal.Signals]) -> None:
    """SIGTERM or SIGHUP reached the master while it forked a worker: send the worker SIGHUP.

    uWSGI 2.0 records a new worker's pid only after the fork's callbacks, so
    the master's handler, which runs as the callbacks let the signal in,
    sends every worker its SIGHUP but the new one. The master then waits, with
    no limit, for a worker that was never told to stop. The new worker is the
    one child the master has not recorded; it holds SIGHUP until its handlers
    exist. Stops sent the moment a killed worker's replacement appeared: 9 of
    20 hung without this, 1 of 40 with it (one that came after the callbacks,
    in the microseconds before the master records the pid: uWSGI's own race).
    """
    import uwsgi  # only in a uWSGI process

    # types-uWSGI types the keys as bytes and allows None; uWSGI's Python 3
    # plugin makes them str, and returns None only if it failed to build them.
    workers = cast("tuple[dict[str, Any], ...]", uwsgi.workers())
    recorded = {worker["pid"] for worker in workers}
    for pid in _children() - recorded:
        os.kill(pid, signal.SIGHUP)


def _children() -> set[int]:
    """This process's child processes (Linux: every thread's ``children`` list)."""
    return {
        int(pid)
        for children in Path(f"/proc/{os.getpid()}/task").glob("*/children")
        for pid in children.read_text().split()
    }


def _end_requests_on_server_timeout() -> None:
    signal.signal(SERVER_TIMEOUT_SIGNAL, end_request_on_server_timeout)


hold_in_forked_children(UWSGI_STOP_SIGNALS, on_arrival=stop_the_new_worker_too)
os.register_at_fork(after_in_child=_end_requests_on_server_timeout)
