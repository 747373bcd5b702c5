from __future__ import annotations

from collections.abc import Callable

import pytest
from eventsourcing.persistence import IntegrityError

from bankaccounts.retry import ConflictUnresolvedError, RetryPolicy


def flaky(failures: int) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def unit_of_work() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise IntegrityError("duplicate key value violates unique constraint")
        return "done"

    return calls, unit_of_work


def test_retries_until_the_unit_of_work_succeeds() -> None:
    calls, unit_of_work = flaky(failures=3)
    pauses: list[float] = []
    conflicts: list[int] = []
    policy = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.03)
    result = policy.run(unit_of_work, on_conflict=lambda: conflicts.append(1), sleep=pauses.append)
    assert result == "done"
    assert len(calls) == 4
    assert len(conflicts) == 3
    assert len(pauses) == 3
    for attempt, pause in enumerate(pauses, start=1):
        assert 0 <= pause <= min(0.03, 0.01 * 2 ** (attempt - 1))


def test_gives_up_after_the_last_attempt() -> None:
    calls, unit_of_work = flaky(failures=100)
    pauses: list[float] = []
    conflicts: list[int] = []
    with pytest.raises(ConflictUnresolvedError, match="after 4 attempts") as info:
        RetryPolicy(attempts=4).run(unit_of_work, on_conflict=lambda: conflicts.append(1), sleep=pauses.append)
    assert isinstance(info.value.__cause__, IntegrityError)
    assert len(calls) == 4
    assert len(conflicts) == 4  # the last failed attempt is rolled back too
    assert len(pauses) == 3  # but not slept after


def test_gives_up_when_the_next_attempt_would_start_after_the_time_budget() -> None:
    now = [100.0]
    starts: list[float] = []

    def unit_of_work() -> None:
        starts.append(now[0] - 100.0)
        now[0] += 1.0  # each attempt takes a second, and conflicts
        raise IntegrityError("duplicate key value violates unique constraint")

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(ConflictUnresolvedError, match=r"after 3 attempts in 3\.0s"):
        RetryPolicy(time_budget=3.0).run(unit_of_work, sleep=sleep, clock=lambda: now[0])
    assert len(starts) == 3  # at about 0, 1 and 2 s: a fourth would start after 3 s
    assert max(starts) <= 3.0


def test_the_time_budget_is_request_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUEST_TIMEOUT", "7")
    assert RetryPolicy().time_budget == 7.0
    monkeypatch.delenv("REQUEST_TIMEOUT")
    assert RetryPolicy().time_budget == 10.0


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def unit_of_work() -> None:
        calls.append(1)
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        RetryPolicy().run(unit_of_work)
    assert calls == [1]


def test_jitter_spreads_the_pauses() -> None:
    pauses = {RetryPolicy(base_delay=0.1, max_delay=0.1).delay(1) for _ in range(50)}
    assert len(pauses) > 40


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 0}, {"base_delay": -1}, {"base_delay": 1, "max_delay": 0.5}, {"time_budget": 0}]
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]  # attempts takes an int, the rest floats
