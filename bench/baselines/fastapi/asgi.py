"""Baseline for the FastAPI recipe: FastAPI and SQLAlchemy on an ordinary ``accounts`` table.

What a FastAPI user would write instead of event sourcing: the same routes
and JSON, request bodies as Pydantic models, and the balance kept in a row
through SQLAlchemy. A deposit is one transaction with an atomic increment
(``UPDATE ... SET balance = balance + :amount ... RETURNING``); a read is
``session.get()``. The recipe writes no audit row, so neither does this.

The database is called as the recipe calls its application, so that the
ratio measures event sourcing and not the way of leaving the event loop: one
hop to a worker thread per request, at most 15 at once (the recipe's
``THREADS``), on a connection pool of 5 + 10 (SQLAlchemy's default, and
eventsourcing's), without a ping on checkout (eventsourcing's pool does none).
Each worker's engine is made by the lifespan and disposed of at shutdown, as
the recipe's application is.

Served by the recipe's own server files (serve_uvicorn.py, gunicorn.conf.py,
serve_granian.py), which name ``asgi:app``: the benchmark copies them beside
this file. ``python asgi.py`` creates the tables first, as a migration would.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, StrictInt, StrictStr
from sqlalchemy import Engine, String, create_engine, event, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from bankaccounts.config import DatabaseConfig


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email_address: Mapped[str] = mapped_column(String(200))
    balance: Mapped[int] = mapped_column(default=0)
    overdraft_limit: Mapped[int] = mapped_column(default=0)
    is_closed: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "full_name": self.full_name,
            "email_address": self.email_address,
            "balance": self.balance,
            "overdraft_limit": self.overdraft_limit,
            "is_closed": self.is_closed,
            "version": self.version,
        }


class OpenAccount(BaseModel):
    full_name: StrictStr
    email_address: StrictStr


class Amount(BaseModel):
    amount: StrictInt


def new_engine() -> Engine:
    database = DatabaseConfig.from_env()
    database.make_sqlite_folder()
    engine = create_engine(database.sqlalchemy_url(), pool_size=5, max_overflow=10)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def wal(connection: Any, _: Any) -> None:  # as eventsourcing's SQLite store sets it for the recipe
            connection.execute("PRAGMA journal_mode=WAL")

    return engine


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One engine per worker process: made before it serves, disposed of after."""
    engine = new_engine()
    app.state.sessions = sessionmaker(engine, expire_on_commit=False)
    app.state.threads = anyio.CapacityLimiter(15)
    try:
        yield
    finally:
        engine.dispose()


async def in_session(request: Request, work: Callable[[Session], dict[str, Any] | None]) -> dict[str, Any]:
    """``work`` in a worker thread, with a session of its own; 404 if it found no account."""

    def run() -> dict[str, Any] | None:
        with request.app.state.sessions() as session:
            return work(session)

    found = await anyio.to_thread.run_sync(run, limiter=request.app.state.threads)
    if found is None:
        raise HTTPException(404, "account not found")
    return found


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, Any]:
    return {"status": "ok", "pid": os.getpid()}


@app.post("/accounts", status_code=201)
async def open_account(body: OpenAccount, request: Request) -> dict[str, Any]:
    def open_one(session: Session) -> dict[str, Any]:
        account = Account(id=uuid.uuid4(), full_name=body.full_name, email_address=body.email_address)
        session.add(account)
        session.commit()
        return account.as_json()

    return await in_session(request, open_one)


@app.get("/accounts/{account_id}")
async def get_account(account_id: uuid.UUID, request: Request) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any] | None:
        account = session.get(Account, account_id)
        return None if account is None else account.as_json()

    return await in_session(request, read)


@app.post("/accounts/{account_id}/deposit")
async def deposit(account_id: uuid.UUID, body: Amount, request: Request) -> dict[str, Any]:
    def increment(session: Session) -> dict[str, Any] | None:
        statement = (
            update(Account)
            .where(Account.id == account_id)
            .values(balance=Account.balance + body.amount, version=Account.version + 1)
            .returning(Account)
        )
        account = session.scalars(statement).one_or_none()
        if account is None:
            return None
        found = account.as_json()
        session.commit()
        return found

    return await in_session(request, increment)


if __name__ == "__main__":
    engine = new_engine()
    Base.metadata.create_all(engine)
    engine.dispose()
