"""Imported by ``uwsgi.ini`` in the master (``shared-import``):

- SIGTERM (stop) and SIGHUP (reload) reach the master loop as its own
  commands, never in the middle of a fork (``relay_to_the_master_loop``);
  each worker starts with both held, until ``hook-accepting`` releases them
  (why: :mod:`bankaccounts.prefork_signals`);
- in each worker, uWSGI's graceful harakiri signal ends a request that ran out
  of time with a 503. Why: :mod:`bankaccounts.timeouts`. (The master keeps
  the signal's default action.)
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import threading
import time
from typing import Any, cast

from bankaccounts.timeouts import SERVER_TIMEOUT_SIGNAL, end_request_on_server_timeout

#: What each stop signal asks of the master, as a command of its fifo: a graceful stop
#: for SIGTERM (workers finish their requests and run their exit hooks), a graceful
#: reload for SIGHUP (uWSGI's own meaning of SIGHUP).
MASTER_FIFO_COMMANDS = {signal.SIGTERM: b"q", signal.SIGHUP: b"r"}
#: How often the relay looks for the master's fifo, which the master makes as its loop
#: starts, once the workers are forked.
FIFO_POLL_SECONDS = 0.01


def relay_to_the_master_loop(fifo_path: str) -> threading.Thread:
    """Hold SIGTERM and SIGHUP in this thread (the master's main thread) for good, take them
    in a thread of their own, and send each to the master loop as its fifo command.

    Why: uWSGI 2.0 acts on a signal in its handler, the moment it arrives. A stop
    that came while the master replaced a dead worker, after the fork and before
    the master recorded the new pid, told every worker to stop but the new one;
    the master then waited for it with no limit (seen once in a CI run; every
    time with that moment made to last a second, in the recipes'
    ``test_a_stop_during_a_workers_replacement_reaches_the_new_worker``). The
    master reads its fifo between two turns of its loop, never within a fork,
    and its graceful stop then reaches every worker it has.

    A signal that comes before the fifo exists waits for it. The fifo's name is
    removed as soon as it is open here: nothing else can write to it, and
    nothing is left behind.
    """
    held = set(MASTER_FIFO_COMMANDS)
    signal.pthread_sigmask(signal.SIG_BLOCK, held)  # a thread starts with its creator's mask

    def relay() -> None:
        fifo = _open_when_made(fifo_path)
        while True:
            os.write(fifo, MASTER_FIFO_COMMANDS[signal.Signals(signal.sigwait(held))])

    thread = threading.Thread(target=relay, name="uwsgi stop signals", daemon=True)
    thread.start()
    return thread


def _open_when_made(path: str) -> int:
    """The fifo at ``path``, open for writing once its reader (the master) has it open."""
    while True:
        try:
            fifo = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:  # not made yet, or not yet open for reading
            if error.errno not in (errno.ENOENT, errno.ENXIO):
                raise
            time.sleep(FIFO_POLL_SECONDS)
            continue
        if not stat.S_ISFIFO(os.fstat(fifo).st_mode):
            msg = f"{path} is not a fifo"
            raise RuntimeError(msg)
        os.unlink(path)
        return fifo


def _in_the_master() -> bool:
    import uwsgi  # only in a uWSGI process

    return bool(uwsgi.masterpid() == os.getpid())


def _master_fifo_path() -> str:
    import uwsgi

    # An option's value is bytes, or a list of them when it is given more than once.
    path = cast("dict[str, Any]", uwsgi.opt).get("master-fifo")
    if not isinstance(path, str | bytes):
        msg = "uwsgi.ini must set master-fifo once (bankaccounts.uwsgi_signals sends it the stop signals)"
        raise RuntimeError(msg)
    return os.fsdecode(path)


def _end_requests_on_server_timeout() -> None:
    signal.signal(SERVER_TIMEOUT_SIGNAL, end_request_on_server_timeout)


if _in_the_master():  # where shared-import runs it; a worker inherits the master's mask
    relay_to_the_master_loop(_master_fifo_path())
os.register_at_fork(after_in_child=_end_requests_on_server_timeout)
