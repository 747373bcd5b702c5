"""Baseline for the Pyramid recipe: pyramid_tm + zope.sqlalchemy on an ordinary table.

The recipe's stack (the Pylons starter project's: ``pyramid_tm``, a
``request.dbsession`` joined to the request's transaction by
``zope.sqlalchemy``, ``pyramid_retry``), with the balance kept in a row. A
deposit is the ORM's atomic increment plus the recipe's audit row, committed
by ``pyramid_tm``; a read is ``dbsession.get()``. Served with the recipe's own
uwsgi.ini (``module = wsgi:app``); the tables are created in the master, and
the engine disposed of, before the workers fork.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

import zope.sqlalchemy
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.view import view_config
from sqlalchemy import String, create_engine, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from bankaccounts.config import DatabaseConfig
from bankaccounts.domain import AccountNotFoundError, BankAccountsError
from bankaccounts.web import error_json, parse_account_id, parse_json_object, status_for


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


class AuditEntry(Base):
    """The recipe writes this row with every command; so does its baseline."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(36), index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))


@view_config(route_name="health", request_method="GET", renderer="json")
def health(request: Request) -> dict[str, Any]:
    return {"status": "ok", "pid": os.getpid()}


@view_config(route_name="accounts", request_method="POST", renderer="json")
def open_account(request: Request) -> dict[str, Any]:
    fields = parse_json_object(request.body, request.headers.get("Content-Type"))
    account = Account(
        id=uuid.uuid4(), full_name=fields.string("full_name"), email_address=fields.string("email_address")
    )
    request.dbsession.add(account)
    request.dbsession.add(AuditEntry(action="open", account_id=str(account.id)))
    request.dbsession.flush()
    request.response.status_code = 201
    return account.as_json()


@view_config(route_name="account", request_method="GET", renderer="json")
def get_account(request: Request) -> dict[str, Any]:
    account = request.dbsession.get(Account, parse_account_id(request.matchdict["account_id"]))
    if account is None:
        raise AccountNotFoundError(request.matchdict["account_id"])
    return account.as_json()


@view_config(route_name="deposit", request_method="POST", renderer="json")
def deposit(request: Request) -> dict[str, Any]:
    account_id = parse_account_id(request.matchdict["account_id"])
    amount = parse_json_object(request.body, request.headers.get("Content-Type")).integer("amount")
    increment = (
        update(Account)
        .where(Account.id == account_id)
        .values(balance=Account.balance + amount, version=Account.version + 1)
        .returning(Account)
    )
    account = request.dbsession.scalars(increment).one_or_none()
    if account is None:
        raise AccountNotFoundError(str(account_id))
    request.dbsession.add(AuditEntry(action="deposit", account_id=str(account_id)))
    return account.as_json()


@view_config(context=BankAccountsError, renderer="json")
def domain_error(error: BankAccountsError, request: Request) -> dict[str, str]:
    request.response.status_code = status_for(error)
    return error_json(str(error))


def make_app() -> Any:
    database = DatabaseConfig.from_env()
    database.make_sqlite_folder()
    engine = create_engine(database.sqlalchemy_url(), pool_pre_ping=True)
    Base.metadata.create_all(engine)
    if engine.dialect.name == "sqlite":  # as eventsourcing-sqlalchemy sets it for the recipe
        with engine.connect() as connection:
            connection.execute(text("PRAGMA journal_mode=WAL"))
    engine.dispose()  # no connection may be inherited by a forked worker
    session_factory = sessionmaker(bind=engine)

    def dbsession(request: Request) -> Session:
        session = session_factory(info={"request": request})
        zope.sqlalchemy.register(session, transaction_manager=request.tm)
        return session

    with Configurator(settings={"tm.manager_hook": "pyramid_tm.explicit_manager"}) as config:
        config.include("pyramid_tm")
        config.include("pyramid_retry")
        config.add_request_method(dbsession, reify=True)
        config.add_route("health", "/health")
        config.add_route("accounts", "/accounts")
        config.add_route("account", "/accounts/{account_id}")
        config.add_route("deposit", "/accounts/{account_id}/deposit")
        config.scan()
    return config.make_wsgi_app()


app = make_app()
