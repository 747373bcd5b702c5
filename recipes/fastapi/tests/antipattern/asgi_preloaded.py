"""DO NOT COPY. The application constructed at import time, in gunicorn's master.

The mistake the recipe's lifespan exists to prevent, made on purpose so that a
test can show what it does. The module builds the application when it is
imported, which gunicorn with ``preload_app`` does in the master; one query
opens a connection in the pool; then every worker inherits that connection
and uses it at the same time as the others. It bypasses
``bankaccounts.lifecycle``, which would refuse.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

import bank_api
from bankaccounts.application import construct_application

# construct_application() labels its connections with this process's pid: the master's.
APPLICATION = construct_application()
APPLICATION.recorder.max_notification_id()  # "warm up" the pool before forking
bank_api.worker_application = lambda: APPLICATION  # every request gets the inherited one


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.threads = anyio.CapacityLimiter(15)
    yield


app = bank_api.create_app(lifespan)
