"""The ``BankAccounts`` application: commands and queries over ``Account`` aggregates."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import PersistenceError

from bankaccounts.config import DatabaseConfig
from bankaccounts.domain import (
    Account,
    AccountNotFoundError,
    AppliedCommand,
    TransferToSameAccountError,
    check_amount,
    check_overdraft_limit,
)
from bankaccounts.retry import RetryPolicy

T = TypeVar("T")

#: Module names of persistence modules mapped to the store names ``/health`` reports.
STORE_NAMES = {
    "eventsourcing.sqlite": "sqlite",
    "eventsourcing.postgres": "postgresql",
    "eventsourcing.popo": "memory",
}


class BankAccounts(Application[UUID]):
    """Open accounts, move money, and read balances.

    Each command loads the aggregates it needs, asks them to change, and saves
    them. A transfer saves both accounts in one ``save()``, so its two events
    are recorded atomically: both or neither.

    ``command_id`` makes a command idempotent. Queues deliver messages at least
    once: a worker that finished a task but had not yet acknowledged it when it
    stopped will see the message again. Given the same ``command_id`` (a task or
    message id), a command that was already applied is not applied again; the
    account is returned as it is now. The record of the command is saved in the
    same ``save()`` as its effects, so it exists if and only if they do.

    ``retry`` re-runs a command that lost an optimistic-concurrency race. Pass
    ``retry=None`` when the application runs inside a transaction it does not
    own (a web request's session): then a conflict surfaces as
    ``eventsourcing.persistence.IntegrityError``, and whoever owns the
    transaction rolls it back and retries the whole unit of work.
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        retry: RetryPolicy | None = RetryPolicy(),  # noqa: B008 - frozen dataclass
    ) -> None:
        super().__init__(env)
        self.retry = retry
        #: Distinguishes instances, e.g. in ``/health``: one per process is the rule.
        self.instance_id = uuid4().hex
        #: The process that constructed this instance; see ``bankaccounts.lifecycle``.
        self.pid = os.getpid()

    @property
    def store(self) -> str:
        """The kind of database the events are recorded in, e.g. ``"postgresql"``."""
        name = getattr(self.factory, "store_name", None)  # a persistence module may say
        if name:
            return str(name)
        engine = getattr(getattr(self.factory, "datastore", None), "engine", None)

        if engine is not None:  # an SQLAlchemy-based persistence module
            return str(engine.dialect.name)
        module = type(self.factory).__module__
        return STORE_NAMES.get(module, module)

    def open_account(self, full_name: str, email_address: str, *, command_id: str | None = None) -> Account:
        def unit_of_work() -> Account:
            if command_id is not None and (applied := self._applied_command(command_id)) is not None:
                return self.get_account(applied.account_id)
            account = Account.open(full_name, email_address)
            self.save(account, *self._command_record(command_id, "open_account", account.id))
            return account

        return self._run(unit_of_work)

    def get_account(self, account_id: UUID) -> Account:
        try:
            account = self.repository.get(account_id)
        except AggregateNotFoundError:
            account = None
        if not isinstance(account, Account):
            msg = f"account {account_id} not found"
            raise AccountNotFoundError(msg)
        return account

    def deposit(self, account_id: UUID, amount: int, *, command_id: str | None = None) -> Account:
        check_amount(amount)

        def unit_of_work() -> Account:
            account = self.get_account(account_id)
            if not self._is_applied(command_id):
                account.deposit(amount)
                self.save(account, *self._command_record(command_id, "deposit", account_id))
            return account

        return self._run(unit_of_work)

    def withdraw(self, account_id: UUID, amount: int, *, command_id: str | None = None) -> Account:
        check_amount(amount)

        def unit_of_work() -> Account:
            account = self.get_account(account_id)
            if not self._is_applied(command_id):
                account.withdraw(amount)
                self.save(account, *self._command_record(command_id, "withdraw", account_id))
            return account

        return self._run(unit_of_work)

    def transfer(self, account_id: UUID, to_account_id: UUID, amount: int, *, command_id: str | None = None) -> Account:
        """Move ``amount`` from one account to another; return the source account."""
        check_amount(amount)
        if account_id == to_account_id:
            msg = "cannot transfer from an account to itself"
            raise TransferToSameAccountError(msg)

        def unit_of_work() -> Account:
            source = self.get_account(account_id)
            destination = self.get_account(to_account_id)
            if not self._is_applied(command_id):
                source.send_transfer(to_account_id, amount)
                destination.receive_transfer(account_id, amount)
                # One atomic recording of both events (and of the command, if named).
                self.save(source, destination, *self._command_record(command_id, "transfer", account_id))
            return source

        return self._run(unit_of_work)

    def set_overdraft_limit(self, account_id: UUID, limit: int) -> Account:
        check_overdraft_limit(limit)

        def unit_of_work() -> Account:
            account = self.get_account(account_id)
            account.set_overdraft_limit(limit)
            self.save(account)
            return account

        return self._run(unit_of_work)

    def close_account(self, account_id: UUID) -> Account:
        def unit_of_work() -> Account:
            account = self.get_account(account_id)
            account.close()
            self.save(account)
            return account

        return self._run(unit_of_work)

    def _applied_command(self, command_id: str) -> AppliedCommand | None:
        try:
            applied = self.repository.get(AppliedCommand.create_id(command_id))
        except AggregateNotFoundError:
            return None
        assert isinstance(applied, AppliedCommand)
        return applied

    def _is_applied(self, command_id: str | None) -> bool:
        return command_id is not None and self._applied_command(command_id) is not None

    @staticmethod
    def _command_record(command_id: str | None, name: str, account_id: UUID) -> list[AppliedCommand]:
        return [] if command_id is None else [AppliedCommand(command_id, name, account_id)]

    def _run(self, unit_of_work: Callable[[], T]) -> T:
        if self.retry is None:
            return unit_of_work()
        return self.retry.run(unit_of_work)


def construct_application(
    env: Mapping[str, str] | None = None,
    *,
    retry: RetryPolicy | None = RetryPolicy(),  # noqa: B008 - frozen dataclass
) -> BankAccounts:
    """Build ``BankAccounts`` on the store that ``DATABASE_URL`` selects.

    ``env`` is laid over the settings derived from ``DATABASE_URL``, so a recipe
    can swap in another persistence module (e.g. ``eventsourcing_sqlalchemy``).

    PostgreSQL connections opened by this process carry its pid in their
    ``application_name`` (libpq reads ``PGAPPNAME`` when it connects), so that
    ``pg_stat_activity`` shows which process owns which server session.
    """
    os.environ["PGAPPNAME"] = f"bankaccounts-{os.getpid()}"
    settings = DatabaseConfig.from_env().eventsourcing_env()
    settings.update(env or {})
    return BankAccounts(env=settings, retry=retry)


#: For processes that use a schema created before they started (see create_schema).
SCHEMA_EXISTS = {"CREATE_TABLE": "n"}
#: Pauses between attempts to create the schema: eight processes at once on
#: PostgreSQL ("tuple concurrently updated") needed more than three fixed ones.
SCHEMA_RETRY = RetryPolicy(attempts=10, base_delay=0.05, max_delay=0.5)


def create_schema(env: Mapping[str, str] | None = None, attempts: int = 10) -> None:
    """Create the event store's tables, if missing, with a short-lived application.

    Call it once, before worker processes start (in a prefork server's or a
    task queue's main process), and construct the workers' applications with
    ``SCHEMA_EXISTS``. The application is closed before this returns, so no
    connection survives to be inherited by a forked child. Processes that
    create tables at the same moment race (uWSGI's ``lazy-apps`` workers, each
    importing the app): PostgreSQL's ``CREATE TABLE IF NOT EXISTS`` is not safe
    against concurrent creators, and on a new SQLite file all but one of them
    fail to switch it to WAL mode (``database is locked``, raised as sqlite3's
    own error). The losers look again, after a random pause (so that they do
    not race each other again), and find the tables there.
    """
    for attempt in range(1, attempts + 1):
        try:
            with construct_application(env={**(env or {}), "CREATE_TABLE": "y"}, retry=None):
                return
        except (PersistenceError, sqlite3.OperationalError):
            if attempt == attempts:
                raise
            time.sleep(SCHEMA_RETRY.delay(attempt))
