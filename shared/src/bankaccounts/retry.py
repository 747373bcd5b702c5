"""Retrying a unit of work that lost an optimistic-concurrency race.

Two processes that load the same aggregate at version ``n`` and both try to
record version ``n + 1`` cannot both succeed: the event store's unique
constraint rejects the second with ``eventsourcing.persistence.IntegrityError``.
The right response is to run the *whole* unit of work again (load, decide,
save), after a short random pause so that the competitors spread out.

``RetryPolicy`` does exactly that, with "full jitter" exponential backoff,
a bounded number of times and for a bounded time (``REQUEST_TIMEOUT``, see
``bankaccounts.timeouts``). When either runs out it raises
``ConflictUnresolvedError``, which web recipes answer with 409.

Where the unit of work is a database transaction owned by someone else (a web
request's session), retry at that level instead and roll the transaction back
after each conflict: pass ``on_conflict``. See the Flask recipe.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from eventsourcing.persistence import IntegrityError

from bankaccounts.timeouts import request_timeout
from bankaccounts.unavailable import store_unavailable

T = TypeVar("T")

logger = logging.getLogger(__name__)


class ConflictUnresolvedError(Exception):
    """A write still conflicted with concurrent writes after every retry.

    Not one of the example's domain errors: web views answer it with 409 beside
    them (``bankaccounts.web.ANSWERED_ERRORS``), and nothing here imports the example.
    """


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, to re-run a unit of work after a conflict."""

    # Measured with 16 writers (4 processes x 4 threads) on one account: the
    # unluckiest command needed 24 attempts with these pauses on a quiet
    # machine, and more than 50 on one loaded to six times its cores (every
    # read of the account is slower there, so more writes land in between).
    # The bound is 100, and the time the retries may take is bounded too.
    attempts: int = 100
    base_delay: float = 0.005  # seconds: the ceiling of the first pause
    max_delay: float = 0.5  # no single pause is longer than this
    #: Seconds from the first attempt after which no new attempt starts:
    #: ``REQUEST_TIMEOUT`` (read when the policy is made), so that a request
    #: that keeps losing answers 409 while its client still waits.
    time_budget: float = field(default_factory=lambda: float(request_timeout()))

    def __post_init__(self) -> None:
        if self.attempts < 1:
            msg = "attempts must be at least 1"
            raise ValueError(msg)
        if not 0 <= self.base_delay <= self.max_delay:
            msg = "delays must satisfy 0 <= base_delay <= max_delay"
            raise ValueError(msg)
        if self.time_budget <= 0:
            msg = "time_budget must be positive"
            raise ValueError(msg)

    def delay(self, attempt: int) -> float:
        """Pause after failed attempt number ``attempt`` (1-based): full jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography

    def out_of_time(self, started: float, pause: float = 0.0, clock: Callable[[], float] = time.monotonic) -> bool:
        """Would an attempt after ``pause`` start later than the budget allows?

        ``started`` is the ``clock()`` reading when the first attempt began.
        """
        return clock() + pause - started > self.time_budget

    def run(
        self,
        unit_of_work: Callable[[], T],
        *,
        on_conflict: Callable[[], object] | None = None,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> T:
        """Call ``unit_of_work`` until it does not raise ``IntegrityError``.

        ``on_conflict`` runs after every conflict, before the pause: the place
        to roll back a transaction that the failed attempt left open.
        """
        started = clock()
        for attempt in range(1, self.attempts + 1):
            try:
                return unit_of_work()
            except IntegrityError as error:
                if on_conflict is not None:
                    on_conflict()
                pause = self.delay(attempt)
                if attempt == self.attempts or self.out_of_time(started, pause, clock):
                    msg = f"write conflict still unresolved after {attempt} attempts in {clock() - started:.1f}s"
                    raise ConflictUnresolvedError(msg) from error
                logger.debug("write conflict on attempt %d, retrying in %.4fs", attempt, pause)
                sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover


def worth_running_again(error: BaseException) -> bool:
    """Whether a task queue should run a failed command again later, with the same id.

    Yes while the store is unavailable (``store_unavailable``), and for a write
    that lost every race for its account within its time budget
    (``ConflictUnresolvedError``): a web client hears 409 and sends again; a
    task's client is its queue. Never for other errors (the domain's refusals):
    the same command would fail the same way.
    """
    return store_unavailable(error) or isinstance(error, ConflictUnresolvedError)
