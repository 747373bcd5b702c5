"""The ASGI entry point, ``asgi:app``, for uvicorn and for gunicorn's uvicorn worker.

Importing this module builds the FastAPI app and nothing else: no database
connection, no application. Each worker process's ``BankAccounts`` is built by
the lifespan, when the server starts that worker, and closed when it stops.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from bank_api import create_app
from worker import start_worker, stop_worker

logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(name)s %(levelname)s: %(message)s")

#: How many application calls one worker runs at once (its threads). Keep it
#: at most the store's connections per process: eventsourcing's PostgreSQL pool
#: holds POSTGRES_POOL_SIZE + POSTGRES_MAX_OVERFLOW (5 + 10). A call beyond that
#: waits in its thread for a connection; one within it waits in the event loop.
DEFAULT_THREADS = 15


def application_threads() -> int:
    threads = int(os.environ.get("THREADS") or DEFAULT_THREADS)
    if threads < 1:
        msg = f"THREADS must be 1 or more, not {threads}"
        raise ValueError(msg)
    return threads


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One application per worker process: built before it serves, closed after."""
    app.state.threads = anyio.CapacityLimiter(application_threads())
    await anyio.to_thread.run_sync(start_worker)
    try:
        yield
    finally:
        await anyio.to_thread.run_sync(stop_worker)


app = create_app(lifespan)
