"""Hold stop signals in every worker a prefork server forks, until it can act on them.

A prefork server installs a worker's own signal handlers some time after the
fork: gunicorn in the worker's ``init_signals()``, uWSGI only when the worker
is about to accept requests (after its ``@postfork`` functions, or its import
of the app under ``lazy-apps``). Until then the worker has its master's
handlers, or none: uWSGI's initial workers ignore SIGTERM and SIGHUP, a
respawned one runs the master's handler, and gunicorn's master handler only
queues the signal for a master loop the worker does not run. Either way a
stop meant for a starting worker is lost. The worker goes on serving, and the
master waits for it: gunicorn ``graceful_timeout`` and then SIGKILL (its
application never closed), uWSGI 2.0 without any limit.

So the recipes *hold* (block) the stop signals instead: a held signal waits,
and is acted on when it is released, once the worker's handlers exist.
``hold_in_forked_children()`` makes every child start with them held: the
parent blocks them just before ``fork()``, so the child inherits the mask
from its first instruction, and restores its own mask just after. No moment
is left in which a signal can reach a new worker before its own handlers.
Who releases them:

- gunicorn: the recipes' ``post_worker_init`` hook (after ``init_signals()``),
  and ``pre_exec`` for a master re-executed by SIGUSR2.
- uWSGI: ``uwsgi.ini``'s ``hook-accepting``, in C, once the worker is ready.
  There the master holds them in its main thread for good, from its start
  (``hook-asap``), so each worker inherits them held; a thread of the master
  takes them (:mod:`bankaccounts.uwsgi_signals`).
- Granian, ASGI: the FastAPI recipe's ``serve_granian.py``, one loop turn after
  the lifespan's startup.
- Granian, WSGI: never. Its master and workers wait on a lock in their main
  thread, which then acts only on a signal delivered to it:
  ``take_in_a_thread`` holds them in every thread, and takes them in one.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterable

#: What stops a gunicorn worker: gracefully (SIGTERM), quickly (SIGINT, SIGQUIT).
GUNICORN_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
#: What stops a Granian worker: its master sends SIGTERM; Ctrl+C sends SIGINT.
GRANIAN_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
#: What Granian's master acts on: a stop, and a reload (SIGHUP).
GRANIAN_MASTER_SIGNALS = GRANIAN_STOP_SIGNALS | {signal.SIGHUP}


def hold_in_forked_children(signals: Iterable[signal.Signals]) -> None:
    """Make every child this process forks from now on start with ``signals`` blocked.

    A signal sent to the parent in the moment of the fork waits, and is
    delivered when the parent restores its mask. Forks made later by the children themselves
    are not affected.
    """
    held = frozenset(signals)
    parent = os.getpid()
    saved: list[set[int | signal.Signals]] = []  # as pthread_sigmask returns them

    def before() -> None:
        if os.getpid() == parent:
            saved.append(signal.pthread_sigmask(signal.SIG_BLOCK, held))

    def after_in_parent() -> None:
        if saved:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved.pop())

    def after_in_child() -> None:
        saved.clear()  # the child keeps them held until its server releases them

    os.register_at_fork(before=before, after_in_parent=after_in_parent, after_in_child=after_in_child)


def take_in_a_thread(signals: Iterable[signal.Signals]) -> None:
    """Hold ``signals`` in this thread, and so in every thread and process it starts from
    now on, and take them in a thread of their own, which calls the Python handler that
    the program installs for each after this call (the one before is another program's:
    in a Granian worker, its master's).

    For a process whose main thread waits on a lock (Granian's master, and its WSGI
    worker): Python runs a handler in the main thread only, and such a thread acts on a
    signal only if the kernel delivers it there. Delivered to another of its threads
    (any that does not hold it), the signal was never acted on, and the stop was lost.
    Held in every thread, it waits until ``sigwait`` takes it here. A signal that comes
    before the program has installed its handler waits for it.
    """
    held = frozenset(signals)
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    before = {signum: signal.getsignal(signum) for signum in held}

    def take() -> None:
        while True:
            signum = signal.Signals(signal.sigwait(held))
            # Nothing says when the program installs its handler: look again, for a
            # signal that came before, until it has.
            while (handler := signal.getsignal(signum)) is before[signum]:
                time.sleep(0.01)
            if callable(handler):
                handler(signum, None)

    threading.Thread(target=take, name="signals", daemon=True).start()


def release(signals: Iterable[signal.Signals]) -> None:
    """Unblock ``signals`` in this thread: one that came while they were held is delivered now."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
