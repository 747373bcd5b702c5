"""One database transaction per writing request, re-run from the start on a write conflict.

Two requests that change one account at once both read version ``n`` and
both try to record version ``n + 1``; the event store's unique constraint
refuses the second with ``eventsourcing.persistence.IntegrityError``. That
request's transaction may already hold other writes (an audit row), so the
only correct response is to roll all of it back and run the whole unit of
work again, with fresh reads. Only the code that *owns* the transaction can
do that, so:

- ``run_in_transaction()`` opens the transaction, and retries it, when no
  transaction is open yet;
- inside a transaction someone else owns (``ATOMIC_REQUESTS``, a caller's
  ``atomic()``, Django's ``TestCase``) it runs the work once, in a savepoint,
  and lets a conflict propagate to that owner. Retrying in the savepoint
  would re-read inside the owner's transaction, which keeps the locks it took
  and, under ``REPEATABLE READ``, the stale snapshot that caused the conflict.

This is why the project leaves ``ATOMIC_REQUESTS`` off: each writing view
owns its transaction through ``@atomic_with_retries``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from bankaccounts.retry import RetryPolicy

T = TypeVar("T")

#: Bounded, jittered retries (see ``bankaccounts.retry``); when they run out,
#: ``ConflictUnresolvedError`` is raised, which the views answer with 409.
CONFLICT_RETRY = RetryPolicy()


def run_in_transaction(unit_of_work: Callable[[], T], *, using: str | None = None) -> T:
    """Run ``unit_of_work`` in one transaction; on a write conflict, roll back and run it again."""
    if transaction.get_connection(using).in_atomic_block:
        with transaction.atomic(using=using):
            return unit_of_work()

    def attempt() -> T:
        # Leaving the block with an exception rolls the whole attempt back.
        with transaction.atomic(using=using):
            return unit_of_work()

    return CONFLICT_RETRY.run(attempt)


def atomic_with_retries(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a view: everything it writes commits at its end, or nothing does."""

    @functools.wraps(view)
    def view_in_transaction(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return run_in_transaction(lambda: view(request, *args, **kwargs))

    return view_in_transaction
