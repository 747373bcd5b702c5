"""The event-sourced application, writing through the request's ``dbsession``.

``eventsourcing_sqlalchemy`` accepts a ``scoped_session`` (named by the
``SQLALCHEMY_SCOPED_SESSION_TOPIC`` setting) and then neither begins, commits
nor closes it: every read and write goes through whatever session the scoped
session currently stands for, and committing is left to its owner. Here that
session is ``request.dbsession``, whose owner is ``pyramid_tm``. So the events
a request saves are committed, or aborted, with everything else it did.

One ``BankAccounts`` per process, constructed by the first request that asks
for ``request.bank``. Under uWSGI and gunicorn that request is served by a
worker, after the fork, so no worker inherits its parent's application.
"""

from __future__ import annotations

from eventsourcing.utils import get_topic
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.threadlocal import get_current_request
from sqlalchemy.orm import Session, scoped_session

from bankaccounts.application import SCHEMA_EXISTS, BankAccounts
from bankaccounts.lifecycle import get_or_init_application
from bankaccounts.web import IDEMPOTENCY_KEY_HEADER, command_id_for


class NoCurrentRequestError(RuntimeError):
    """The event store was used where no Pyramid request is current."""


class CurrentRequestRegistry:
    """What ``scoped_session`` asks for "the current session": the current request's ``dbsession``."""

    def __call__(self) -> Session:
        request = get_current_request()
        if request is None:
            msg = (
                "no current Pyramid request, so no request.dbsession for the event store: "
                "use the application inside a request, or inside pyramid.scripting.prepare()"
            )
            raise NoCurrentRequestError(msg)
        session: Session = request.dbsession
        return session

    def has(self) -> bool:
        return get_current_request() is not None

    def set(self, session: Session) -> None:
        msg = "the event store's session is request.dbsession; it cannot be replaced"
        raise TypeError(msg)

    def clear(self) -> None:
        """Nothing to forget: ``pyramid_tm`` ends the transaction, ``zope.sqlalchemy`` the session."""


class RequestSession(scoped_session[Session]):
    """A ``scoped_session`` whose scope is the Pyramid request being served.

    Why the thread-local "current request": the application is shared by all
    requests of a process, and its recorders take no request argument, so
    they must look the session up when they run. Pyramid keeps the request
    each thread is serving on its thread-local stack, for every request (and
    every retry attempt, each a new request) and inside
    ``pyramid.scripting.prepare()``.
    """

    def __init__(self) -> None:
        # No session factory: sessions are made by request.dbsession, never here.
        super().__init__(session_factory=None)  # type: ignore[arg-type]  # the registry below makes none
        self.registry = CurrentRequestRegistry()  # type: ignore[assignment]  # has what scoped_session calls


_REQUEST_SESSION = RequestSession()


def request_session() -> scoped_session[Session]:
    """``eventsourcing_sqlalchemy`` calls this, found by its topic, when an application is constructed."""
    return _REQUEST_SESSION


#: Settings laid over those that ``bankaccounts.config`` derives from DATABASE_URL.
EVENTSOURCING_ENV = {
    "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
    "SQLALCHEMY_SCOPED_SESSION_TOPIC": get_topic(request_session),
    # Tables are created once per deployment, at start-up (bank.schema).
    **SCHEMA_EXISTS,
}


def bank_application(request: Request) -> BankAccounts:
    """``request.bank``: this process's application, constructed on first use.

    ``retry=None``: inside a transaction the application does not own, it must
    not retry a write conflict itself; the ``IntegrityError`` has to reach
    ``pyramid_retry``, which aborts the transaction and runs the whole request
    again (see ``bank.conflicts``).
    """
    return get_or_init_application(env=EVENTSOURCING_ENV, retry=None)


def command_id(request: Request) -> str:
    """``request.command_id``: the write's ``Idempotency-Key``, or a new id of its own."""
    return command_id_for(request.headers.get(IDEMPOTENCY_KEY_HEADER))


def includeme(config: Configurator) -> None:
    config.add_request_method(bank_application, "bank", reify=True)
    config.add_request_method(command_id, reify=True)
