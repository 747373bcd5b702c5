"""Write conflicts: ``pyramid_retry`` runs the whole request again.

Two requests that load an account at version ``n`` cannot both record
version ``n + 1``: the second insert breaks the event table's unique key, and
``eventsourcing`` raises ``IntegrityError``. That failure spoils the request's
whole transaction (the rows it wrote too), so the only sound retry is of the
whole request: abort the transaction, then load, decide and save again in a
new one. ``pyramid_retry`` does exactly that, with a fresh request, a fresh
``request.tm`` and a fresh ``request.dbsession`` for every attempt; this
module marks the conflict retryable and adds what ``pyramid_retry`` lacks:
a short random pause between attempts, so that competitors spread out.

When the attempts run out, or ``REQUEST_TIMEOUT`` has passed since the first
attempt started, the last conflict is answered with ``409``
(``bank.views.errors``).
"""

from __future__ import annotations

import logging
import time

from eventsourcing.persistence import IntegrityError
from pyramid.config import Configurator
from pyramid.events import NewRequest
from pyramid.httpexceptions import HTTPError
from pyramid.request import Request
from pyramid_retry import IBeforeRetry, mark_error_retryable

from bank.body import check_body_size
from bankaccounts.retry import RetryPolicy

logger = logging.getLogger(__name__)

#: The pauses between attempts and the time they may take; the number of
#: attempts is ``retry.attempts``.
PAUSES = RetryPolicy()
#: The key, in the environ every attempt of a request shares, of when its first attempt started.
FIRST_ATTEMPT_STARTED = "bank.first_attempt_started"


def last_attempt_once_out_of_time(event: NewRequest) -> None:
    """An attempt that starts after the time budget is the last: its conflict is 409.

    ``pyramid_retry`` counts attempts only; it reads ``retry.attempts`` from the
    environ to decide whether an error may be retried.
    """
    environ = event.request.environ
    started = environ.setdefault(FIRST_ATTEMPT_STARTED, time.monotonic())
    attempt = environ.get("retry.attempt")
    if attempt is not None and PAUSES.out_of_time(started):
        environ["retry.attempts"] = attempt + 1


def pause_before_retry(event: IBeforeRetry) -> None:
    """Sleep a random, growing while before the next attempt ("full jitter")."""
    failed_attempt = event.environ["retry.attempt"] + 1  # pyramid_retry counts from 0
    pause = PAUSES.delay(failed_attempt)
    if PAUSES.out_of_time(event.environ[FIRST_ATTEMPT_STARTED], pause):
        pause = 0.0  # the next attempt is the last (last_attempt_once_out_of_time): no need to wait
    logger.debug("attempt %d of %s conflicted; retrying in %.4fs", failed_attempt, event.request.path, pause)
    time.sleep(pause)


def attempts_for(request: Request) -> int | None:
    """``retry.activate_hook``: how many attempts this request may have.

    To replay a request, ``pyramid_retry`` first copies its whole body. Copy
    only a body whose size is declared and acceptable; any other request gets
    one attempt, and no copy, and its body is refused unread (413 or 411).
    ``None`` means the ``retry.attempts`` setting.
    """
    try:
        check_body_size(request)
    except HTTPError:
        return 1
    return None


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    # pyramid_retry defaults to 3 attempts; under contention that is too few.
    settings.setdefault("retry.attempts", PAUSES.attempts)
    settings["retry.activate_hook"] = attempts_for
    config.include("pyramid_retry")
    # As pyramid_tm does for transaction.interfaces.TransientError: any
    # eventsourcing IntegrityError that reaches pyramid_retry may be retried.
    # It is raised when a save breaks the event table's unique key; the views
    # add their own rows after saving, so a fault in those surfaces at commit
    # as one of SQLAlchemy's errors, which is not retried.
    mark_error_retryable(IntegrityError)
    config.add_subscriber(pause_before_retry, IBeforeRetry)
    config.add_subscriber(last_attempt_once_out_of_time, NewRequest)
