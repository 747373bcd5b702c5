"""Baseline for the Flask recipe: Flask-SQLAlchemy on an ordinary ``accounts`` table.

What a Flask user would write instead of event sourcing: the same routes and
JSON, the same engine options and the same audit row in the same transaction
as the recipe's views, with the balance kept in a row. A deposit is the ORM's
atomic increment (``UPDATE ... SET balance = balance + :amount ... RETURNING``)
and a read is ``session.get()``. Served with the recipe's own uwsgi.ini
(``module = wsgi:app``); the engine is disposed of before the workers fork.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bankaccounts.config import DatabaseConfig
from bankaccounts.domain import AccountNotFoundError, BankAccountsError
from bankaccounts.web import MAX_BODY_BYTES, error_json, parse_account_id, parse_json_object, status_for


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Account(db.Model):  # type: ignore[name-defined,misc]
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


class AuditEntry(db.Model):  # type: ignore[name-defined,misc]
    """The recipe writes this row with every command; so does its baseline."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(36), index=True)
    recorded_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))


def create_app() -> Flask:
    app = Flask(__name__)
    database = DatabaseConfig.from_env()
    database.make_sqlite_folder()
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database.sqlalchemy_url(),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    db.init_app(app)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "pid": os.getpid()}

    @app.post("/accounts")
    def open_account() -> tuple[dict[str, Any], int]:
        fields = parse_json_object(request.get_data(cache=False), request.headers.get("Content-Type"))
        account = Account(
            id=uuid.uuid4(), full_name=fields.string("full_name"), email_address=fields.string("email_address")
        )
        db.session.add(account)
        db.session.add(AuditEntry(action="open", account_id=str(account.id)))
        db.session.commit()
        return account.as_json(), 201

    @app.get("/accounts/<account_id>")
    def get_account(account_id: str) -> dict[str, Any]:
        account = db.session.get(Account, parse_account_id(account_id))
        if account is None:
            raise AccountNotFoundError(account_id)
        return account.as_json()

    @app.post("/accounts/<account_id>/deposit")
    def deposit(account_id: str) -> dict[str, Any]:
        account_uuid, amount = (
            parse_account_id(account_id),
            parse_json_object(request.get_data(), request.headers.get("Content-Type")).integer("amount"),
        )
        increment = (
            update(Account)
            .where(Account.id == account_uuid)
            .values(balance=Account.balance + amount, version=Account.version + 1)
            .returning(Account)
        )
        account = db.session.scalars(increment).one_or_none()
        if account is None:
            raise AccountNotFoundError(account_id)
        body = account.as_json()
        db.session.add(AuditEntry(action="deposit", account_id=str(account_uuid)))
        db.session.commit()
        return body

    @app.errorhandler(BankAccountsError)
    def domain_error(error: BankAccountsError) -> tuple[dict[str, str], int]:
        return error_json(str(error)), status_for(error)

    with app.app_context():
        db.create_all()
        if db.engine.dialect.name == "sqlite":  # as eventsourcing-sqlalchemy sets it for the recipe
            with db.engine.connect() as connection:
                connection.execute(text("PRAGMA journal_mode=WAL"))
        db.engine.dispose()  # no connection may be inherited by a forked worker
    return app


app = create_app()
