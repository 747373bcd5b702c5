"""A slot for one application per process, whatever the application.

``ApplicationSlot(factory)`` holds at most one application object for the
current process: ``init()`` constructs it and refuses to run twice, ``get()``
returns it and refuses if there is none, ``get_or_init()`` constructs it on
first use (once, however many threads ask at the same moment), and
``close()`` closes it and empties the slot.

Fork safety, decided: every getter compares the current process id with the
id of the process that constructed the application, and raises
``ApplicationForkedError`` (which names the fix: construct after fork) rather
than hand a child process its parent's connections. It does not quietly build
a replacement, because the parent's connections would still be there, open,
in the child; the mistake is in the deployment and should be seen there.

Nothing here knows the bank-accounts example: ``bankaccounts.lifecycle``
gives the example's application its slot, and a project gives its own the same
way (a test checks that this module imports nothing from the example).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from eventsourcing.application import Application

A = TypeVar("A", bound=Application[Any])

logger = logging.getLogger(__name__)


class ApplicationLifecycleError(RuntimeError):
    """The one-application-per-process rule was broken."""


class ApplicationNotInitialisedError(ApplicationLifecycleError):
    pass


class ApplicationAlreadyInitialisedError(ApplicationLifecycleError):
    pass


class ApplicationForkedError(ApplicationLifecycleError):
    pass


class ApplicationSlot(Generic[A]):
    """Holds at most one application for the current process.

    ``factory`` builds the application; keyword arguments given to ``init()``
    or ``get_or_init()`` are passed to it. ``log`` is the logger that says when
    the application is constructed and closed (this module's, by default).
    """

    def __init__(self, factory: Callable[..., A], log: logging.Logger | None = None) -> None:
        self._factory = factory
        # The module that gives the slot its application names the log lines, when it says so.
        self._log = log or logger
        # The application with the pid of the process that constructed it, in
        # one attribute: a thread that reads it sees both or neither. (Two
        # attributes, set one after the other, let a reader see the new
        # application with no owner yet: a false ApplicationForkedError.)
        self._held: tuple[A, int] | None = None
        self._lock = threading.Lock()
        # Inherited, never closed here: closing would close the parent's connections.
        self._inherited: list[A] = []
        # A fork can happen while another thread holds the lock; the child would
        # then wait forever for a release that never comes. Give it a fresh lock.
        os.register_at_fork(after_in_child=self._reset_lock_after_fork)

    def _reset_lock_after_fork(self) -> None:
        self._lock = threading.Lock()

    def init(self, **kwargs: Any) -> A:
        """Construct the application; raise if this process already has one."""
        with self._lock:
            if self._held is not None:
                self._check_owner(self._held)
                msg = (
                    f"init_application() has already been called in process {os.getpid()}: "
                    "call get_application() to use it, or close_application() first"
                )
                raise ApplicationAlreadyInitialisedError(msg)
            return self._construct(**kwargs)

    def get(self) -> A:
        """Return the application; raise if ``init()`` has not been called."""
        held = self._held
        if held is None:
            msg = (
                f"no application in process {os.getpid()}: call init_application() first, "
                "from a hook that runs once per process (after fork, under a prefork server)"
            )
            raise ApplicationNotInitialisedError(msg)
        return self._check_owner(held)

    def get_or_init(self, **kwargs: Any) -> A:
        """Return the application, constructing it on first use (thread-safe)."""
        held = self._held
        if held is None:
            with self._lock:
                # Check again: another thread may have constructed it while we waited.
                if self._held is None:
                    return self._construct(**kwargs)
                held = self._held
        return self._check_owner(held)

    def close(self) -> None:
        """Close the application, if any, and empty the slot."""
        with self._lock:
            held, self._held = self._held, None
            if held is None:
                return
            application, owner_pid = held
            if owner_pid != os.getpid():
                self._inherited.append(application)
                self._log.warning(
                    "not closing application %s inherited from process %s: its connections belong to that process",
                    getattr(application, "instance_id", "?"),
                    owner_pid,
                )
                return
            application.close()
            self._log.info(
                "closed application %s in process %s",
                getattr(application, "instance_id", "?"),
                owner_pid,
            )

    @property
    def is_initialised(self) -> bool:
        return self._held is not None

    def _construct(self, **kwargs: Any) -> A:
        application = self._factory(**kwargs)
        self._held = (application, os.getpid())
        self._log.info(
            "constructed application %s in process %s",
            getattr(application, "instance_id", "?"),
            os.getpid(),
        )
        return application

    @staticmethod
    def _check_owner(held: tuple[A, int]) -> A:
        application, owner_pid = held
        if owner_pid != os.getpid():
            msg = (
                f"the application was constructed in process {owner_pid} and is being "
                f"used in process {os.getpid()}, a child forked from it; processes must not "
                "share database connections. Construct the application after fork: in a "
                "post-fork hook (uWSGI @postfork, gunicorn post_worker_init, Celery "
                "worker_process_init), lazily on first use, or with uWSGI lazy-apps"
            )
            raise ApplicationForkedError(msg)
        return application
