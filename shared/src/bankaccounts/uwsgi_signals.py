"""Hold SIGHUP and SIGTERM in every worker uWSGI forks, until it can act on them.

uWSGI installs a worker's own SIGHUP and SIGTERM handlers only when the worker
is about to accept requests, after its ``@postfork`` functions have run (and,
with ``lazy-apps``, after it has imported the app). Until then a worker forked
at start-up ignores those signals, and a respawned one runs its master's
handlers instead. Either way a stop meant for the worker is lost: the worker
goes on serving, and uWSGI 2.0's graceful shutdown waits for it with no time
limit. (The master, too, ignores SIGTERM until its own handler is in place.)

So the recipes' ``uwsgi.ini`` *holds* (blocks) both signals instead: a held
signal waits, and is acted on when it is released. ``hook-asap`` holds them in
the master from its start and ``hook-master-start`` releases them there once
its shutdown handler is set; ``hook-accepting`` releases them in each worker
once the worker's handlers are set. This module covers what the hooks cannot:
workers the master forks *after* it has released them (respawns, reloads).
``uwsgi.ini`` imports it in the master (``shared-import``), and with
``py-call-uwsgi-fork-hooks`` uWSGI runs the callbacks registered here around
each fork, so a new worker starts with both signals held: no moment is left in
which a signal can reach it before its own handlers.
"""

from __future__ import annotations

import os
import signal

#: uWSGI's graceful stop of a worker (SIGHUP) and of the whole server (SIGTERM).
STOP_SIGNALS = frozenset({signal.SIGHUP, signal.SIGTERM})


def hold_stop_signals_in_forked_children() -> None:
    """Make every child this process forks start with SIGHUP and SIGTERM blocked.

    The parent blocks them just before ``fork()`` (so the child inherits the
    mask) and restores its own mask just after; a signal sent to the parent in
    that moment waits and is then delivered. Forks made later by the children
    themselves are not affected.
    """
    parent = os.getpid()
    saved: list[set[signal.Signals]] = []

    def before() -> None:
        if os.getpid() == parent:
            saved.append(signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS))

    def after_in_parent() -> None:
        if saved:
            signal.pthread_sigmask(signal.SIG_SETMASK, saved.pop())

    def after_in_child() -> None:
        saved.clear()  # the child keeps the signals held; uWSGI releases them

    os.register_at_fork(before=before, after_in_parent=after_in_parent, after_in_child=after_in_child)


hold_stop_signals_in_forked_children()
