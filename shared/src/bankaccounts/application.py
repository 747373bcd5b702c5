"""The ``BankAccounts`` application: commands and queries over ``Account`` aggregates."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import PersistenceError

from bankaccounts.aggregate_locks import AggregateLocks, ContendedAggregates, locks_for
from bankaccounts.config import application_env, label_postgres_connections
from bankaccounts.domain import (
    Account,
    AccountNotFoundError,
    AppliedCommand,
    CommandIdReusedError,
    TransferToSameAccountError,
    check_amount,
    check_overdraft_limit,
)
from bankaccounts.retry import RetryPolicy
from bankaccounts.unavailable import no_connection

T = TypeVar("T")

#: Store names for eventsourcing's own persistence modules, whose factories do not name themselves.
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
    stopped will see the message again; an HTTP client that lost an answer
    sends its request again. Given the same ``command_id`` (a task or message
    id, an ``Idempotency-Key``), a command that was already applied is not
    applied again; the account is returned as it is now. The record of the
    command is saved in the same ``save()`` as its effects, so it exists if and
    only if they do. The same id with other arguments raises
    ``CommandIdReusedError``.

    Writers of one account take turns: a command waits for the locks of the
    accounts it changes before it reads them, where writers race for them
    (see ``_run`` for when, and ``bankaccounts.aggregate_locks``).

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
        self.locks: AggregateLocks = locks_for(self.factory)
        #: Aggregates whose writers in this process lately lost races: they take turns.
        self.contended = ContendedAggregates()
        #: Distinguishes instances, e.g. in ``/health``: one per process is the rule.
        self.instance_id = uuid4().hex
        #: The process that constructed this instance; see ``bankaccounts.lifecycle``.
        self.pid = os.getpid()

    @property
    def store(self) -> str:
        """The kind of database the events are recorded in, e.g. ``"postgresql"``.

        The factory of the persistence module says (``store_name``: the
        cookbook's stores do), or its SQLAlchemy engine does
        (``eventsourcing_sqlalchemy``); for eventsourcing's own modules, the
        module's name does.
        """
        name = getattr(self.factory, "store_name", None)
        if name:
            return str(name)
        engine = getattr(getattr(self.factory, "datastore", None), "engine", None)
        if engine is not None:
            return str(engine.dialect.name)
        module = type(self.factory).__module__
        return STORE_NAMES.get(module, module)

    def open_account(self, full_name: str, email_address: str, *, command_id: str | None = None) -> Account:
        command = Command(command_id, "open_account", full_name, email_address)

        def unit_of_work() -> Account:
            if (applied := self._applied_command(command)) is not None:
                return self.get_account(applied.account_id)
            account = Account.open(full_name, email_address)
            self.save(account, *command.record(account.id))
            return account

        return self._run(unit_of_work)

    def get_account(self, account_id: UUID) -> Account:
        try:
            account: object = self.repository.get(account_id)
        except AggregateNotFoundError:
            account = None
        if not isinstance(account, Account):
            msg = f"account {account_id} not found"
            raise AccountNotFoundError(msg)
        return account

    def deposit(self, account_id: UUID, amount: int, *, command_id: str | None = None) -> Account:
        check_amount(amount)
        command = Command(command_id, "deposit", account_id, amount)

        def unit_of_work() -> Account:
            account = self.get_account(account_id)
            if self._applied_command(command) is None:
                account.deposit(amount)
                self.save(account, *command.record(account_id))
            return account

        return self._run(unit_of_work, account_id)

    def withdraw(self, account_id: UUID, amount: int, *, command_id: str | None = None) -> Account:
        check_amount(amount)
        command = Command(command_id, "withdraw", account_id, amount)

        def unit_of_work() -> Account:
            account = self.get_account(account_id)
            if self._applied_command(command) is None:
                account.withdraw(amount)
                self.save(account, *command.record(account_id))
            return account

        return self._run(unit_of_work, account_id)

    def transfer(self, account_id: UUID, to_account_id: UUID, amount: int, *, command_id: str | None = None) -> Account:
        """Move ``amount`` from one account to another; return the source account."""
        check_amount(amount)
        if account_id == to_account_id:
            msg = "cannot transfer from an account to itself"
            raise TransferToSameAccountError(msg)

        command = Command(command_id, "transfer", account_id, to_account_id, amount)

        def unit_of_work() -> Account:
            source = self.get_account(account_id)
            destination = self.get_account(to_account_id)
            if self._applied_command(command) is None:
                source.send_transfer(to_account_id, amount)
                destination.receive_transfer(account_id, amount)
                # One atomic recording of both events (and of the command, if named).
                self.save(source, destination, *command.record(account_id))
            return source

        return self._run(unit_of_work, account_id, to_account_id)

    def set_overdraft_limit(self, account_id: UUID, limit: int, *, command_id: str | None = None) -> Account:
        check_overdraft_limit(limit)
        command = Command(command_id, "set_overdraft_limit", account_id, limit)

        def unit_of_work() -> Account:
            account = self.get_account(account_id)
            if self._applied_command(command) is None:
                account.set_overdraft_limit(limit)
                self.save(account, *command.record(account_id))
            return account

        return self._run(unit_of_work, account_id)

    def close_account(self, account_id: UUID, *, command_id: str | None = None) -> Account:
        command = Command(command_id, "close_account", account_id)

        def unit_of_work() -> Account:
            account = self.get_account(account_id)
            if self._applied_command(command) is None:
                account.close()
                self.save(account, *command.record(account_id))
            return account

        return self._run(unit_of_work, account_id)

    def is_applied(self, command_id: str) -> bool:
        """Whether a command with this id has been applied (with any arguments)."""
        return self._record_of(command_id) is not None

    def _record_of(self, command_id: str) -> AppliedCommand | None:
        try:
            applied: object = self.repository.get(AppliedCommand.create_id(command_id))
        except AggregateNotFoundError:
            return None
        assert isinstance(applied, AppliedCommand)
        return applied

    def _applied_command(self, command: Command) -> AppliedCommand | None:
        """The record of ``command`` if it was applied; ``CommandIdReusedError`` if its id names another."""
        applied = None if command.id is None else self._record_of(command.id)
        if applied is None:
            return None
        if applied.fingerprint and applied.fingerprint != command.fingerprint:
            msg = f"command id {command.id!r} was already used for a different request ({applied.name})"
            raise CommandIdReusedError(msg)
        return applied

    def _run(self, unit_of_work: Callable[[], T], *changes: UUID) -> T:
        """Run ``unit_of_work``, which changes the aggregates ``changes``, in its turn.

        Inside a transaction someone else owns (``retry=None``), the locks are
        taken before every attempt: there they cost one statement. With its own
        retries, the application takes them only for aggregates that writers
        have been seen racing for (``self.contended``): on
        ``eventsourcing.postgres`` a lock costs a second connection's
        transaction, a fifth of an uncontended deposit, so a write to a quiet
        account goes ahead without it; a command that loses a race marks the
        aggregates, and from then on every writer of them in this process takes
        its turn, until none has for ``CONTENDED_SECONDS``.
        """

        def in_turn() -> T:
            with self.locks.hold(changes):
                return unit_of_work()

        if self.retry is None:
            return in_turn()

        def attempt() -> T:
            if not self.contended.any(changes):
                return unit_of_work()
            self.contended.mark(changes)  # still contended: keep taking turns
            return in_turn()

        return self.retry.run(attempt, on_conflict=lambda: self.contended.mark(changes))


class Command:
    """A command's id, if it has one, and the fingerprint of its name and arguments."""

    def __init__(self, command_id: str | None, name: str, *arguments: object) -> None:
        self.id = command_id
        self.name = name
        text = json.dumps([name, *map(str, arguments)])
        self.fingerprint = hashlib.sha256(text.encode()).hexdigest()

    def record(self, account_id: UUID) -> list[AppliedCommand]:
        """What to save with the command's effects: its record, if it has an id."""
        return [] if self.id is None else [AppliedCommand(self.id, self.name, account_id, self.fingerprint)]


def construct_application(
    env: Mapping[str, str] | None = None,
    *,
    retry: RetryPolicy | None = RetryPolicy(),  # noqa: B008 - frozen dataclass
) -> BankAccounts:
    """Build ``BankAccounts`` on the store ``bankaccounts.config.application_env`` selects:
    the persistence module ``env`` names, or else the store ``DATABASE_URL`` names.

    PostgreSQL connections opened by this process carry its pid in their
    ``application_name`` (``label_postgres_connections``), so that
    ``pg_stat_activity`` shows which process owns which server session.
    """
    label_postgres_connections()
    return BankAccounts(env=application_env(env), retry=retry)


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
    not race each other again), and find the tables there. A database that
    cannot be reached at all is not a race: that error is raised at once, after
    one wait for a connection (``POSTGRES_CONNECTION_WAIT_SECONDS``), not ten.
    """
    for attempt in range(1, attempts + 1):
        try:
            with construct_application(env={**(env or {}), "CREATE_TABLE": "y"}, retry=None):
                return
        except (PersistenceError, sqlite3.OperationalError) as error:
            if attempt == attempts or no_connection(error):
                raise
            time.sleep(SCHEMA_RETRY.delay(attempt))
