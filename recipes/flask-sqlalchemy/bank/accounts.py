"""The event-sourced application, on the request's SQLAlchemy session.

One ``BankAccounts`` per process, constructed lazily by the first request that
needs it. Under uWSGI and gunicorn that first request arrives in a worker,
after the fork, so no worker ever holds its parent's connections; and nothing
server-specific is needed to get there.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from eventsourcing.utils import get_topic
from flask import has_request_context, request

from bank.db import AuditEntry, db, request_session
from bankaccounts.application import BankAccounts
from bankaccounts.domain import Account
from bankaccounts.insert_once import insert_once
from bankaccounts.lifecycle import get_or_init_application
from bankaccounts.retry import RetryPolicy
from bankaccounts.web import IDEMPOTENCY_KEY_HEADER, command_id_for

#: Settings laid over those derived from DATABASE_URL (see bankaccounts.config).
EVENTSOURCING_ENV = {
    "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
    "SQLALCHEMY_SCOPED_SESSION_TOPIC": get_topic(request_session),
    # The schema is created once per deployment, by create_app() in the master.
    "CREATE_TABLE": "n",
}

#: Conflicts are retried per request (below), not inside the application.
REQUEST_RETRY = RetryPolicy()


def bank() -> BankAccounts:
    """This process's application, constructed on first use."""
    # retry=None: inside a transaction the application does not own, a conflict
    # must reach in_transaction(), which rolls back and re-runs the whole request.
    return get_or_init_application(env=EVENTSOURCING_ENV, retry=None)


def in_transaction(action: str, command: Callable[[str], Account], *, account_id: UUID | None = None) -> Account:
    """Run ``command``, record an audit row, and commit both in one transaction.

    ``command`` gets the request's command id: its ``Idempotency-Key``, or a
    new id (outside a request, always a new one). A request sent again with
    its key is answered, and changes and audits nothing.

    Given the ``account_id`` the command acts on, the audit row goes in before
    the command runs: saving the events takes the events table's lock (their
    notification ids in commit order), held to the commit, so whatever the
    transaction does after the save, every writer of the application waits
    for. Opening an account learns the id from the command, so audits after it.

    ``eventsourcing_sqlalchemy`` never commits a session it was given: that is
    the owner's job, here. A write conflict (``IntegrityError``) leaves the
    transaction unusable, so roll it back and run the command again from the
    start, with fresh reads, a bounded number of times.
    """
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER) if has_request_context() else None
    command_id = command_id_for(key)

    def audit(audited_id: UUID) -> None:
        # One row per command id and action: sent again, the command adds none.
        insert_once(db.session, AuditEntry, action=action, command_id=command_id, account_id=str(audited_id))

    def unit_of_work() -> Account:
        if account_id is not None:
            audit(account_id)
        account = command(command_id)
        if account_id is None:
            audit(account.id)
        db.session.commit()
        return account

    return REQUEST_RETRY.run(unit_of_work, on_conflict=db.session.rollback)
