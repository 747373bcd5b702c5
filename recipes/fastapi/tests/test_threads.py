"""THREADS against the store's connection pool, measured while the database stalls.

Eight deposits reach one worker while its database answers nothing, through a
pool of two connections. With ``THREADS`` at the pool's size, two calls hold the
two connections and six wait in the event loop, holding nothing. With
``THREADS`` wider than the pool, all eight hold a thread, six of them waiting in
the pool (which gives up after ``POSTGRES_CONNECT_TIMEOUT``, and eventsourcing's
recorder asks again). Either way no deposit fails and each is applied once when
the database answers: a wrong ``THREADS`` costs threads, not requests.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from asgi import app
from cookbook_testing.faults import FaultProxy

pytestmark = pytest.mark.requires_postgresql

POOL = 2
CALLS = 8
#: Seconds the database answers nothing: past the pool's 2 s wait, so that the
#: calls queued in the pool give up once and ask again.
STALL = 3.0


def deposit(client: TestClient, account_id: str) -> tuple[int, float, float]:
    """(status, when it was sent, when it was answered): monotonic seconds."""
    sent = time.monotonic()
    response = client.post(
        f"/accounts/{account_id}/deposit", json={"amount": 100}, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    return response.status_code, sent, time.monotonic()


@pytest.mark.parametrize("threads", [POOL, CALLS], ids=["threads-at-the-pool", "threads-beyond-the-pool"])
def test_calls_beyond_the_pool_hold_threads_and_none_fails(
    threads: int, database_behind_a_fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = database_behind_a_fault_proxy
    monkeypatch.setenv("DATABASE_URL", database.url)
    monkeypatch.setenv("POSTGRES_POOL_SIZE", str(POOL))
    monkeypatch.setenv("POSTGRES_MAX_OVERFLOW", "0")
    monkeypatch.setenv("THREADS", str(threads))
    with TestClient(app, base_url="http://localhost") as client, ThreadPoolExecutor(CALLS) as clients:
        opened = client.post("/accounts", json={"full_name": "Ada", "email_address": "ada@example.com"})
        account_id = opened.json()["id"]
        limiter = app.state.threads
        database.freeze()
        try:
            deadline = time.monotonic() + STALL
            calls = [clients.submit(deposit, client, account_id) for _ in range(CALLS)]
            while limiter.statistics().tasks_waiting + limiter.borrowed_tokens < CALLS:
                assert time.monotonic() < deadline, "the deposits did not all reach the worker"
                time.sleep(0.01)
            holding, queued = limiter.borrowed_tokens, limiter.statistics().tasks_waiting
            time.sleep(max(0.0, deadline - time.monotonic()))  # the stall's length, not a readiness wait
        finally:
            thawed_at = time.monotonic()
            database.thaw()
        outcomes = [call.result(timeout=60) for call in calls]
        balance = client.get(f"/accounts/{account_id}").json()["balance"]
    print(
        f"THREADS={threads}, pool {POOL}: {holding} calls in threads, {queued} in the event loop; "
        f"seconds per deposit {sorted(round(answered - sent, 2) for _, sent, answered in outcomes)}"
    )
    assert (holding, queued) == (threads, CALLS - threads)
    assert [status for status, _, _ in outcomes] == [200] * CALLS
    assert min(answered for _, _, answered in outcomes) >= thawed_at  # none answered while the database was not
    assert balance == 100 * CALLS
