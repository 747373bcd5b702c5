"""The domain model: a bank account as an event-sourced aggregate.

Amounts are integers in cents. Every command checks its arguments and the
account's state *before* it triggers an event, so a rejected command leaves the
aggregate (and therefore the event store) untouched.
"""

from __future__ import annotations

import unicodedata
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

#: Upper bound for one amount and for an overdraft limit, in cents (10 billion).
MAX_AMOUNT = 10**12
MAX_FULL_NAME_LENGTH = 200
MAX_EMAIL_ADDRESS_LENGTH = 254  # RFC 5321 limit for a forward path.


class BankAccountsError(Exception):
    """Base class of every error the domain and the application raise on purpose."""


class InvalidRequestError(BankAccountsError, ValueError):
    """The arguments of a command are invalid; nothing was changed."""


class InvalidAccountDetailsError(InvalidRequestError):
    """The full name or email address of a new account is invalid."""


class InvalidAmountError(InvalidRequestError):
    """An amount is not an integer number of cents in the allowed range."""


class InvalidOverdraftLimitError(InvalidRequestError):
    """An overdraft limit is not an integer number of cents in the allowed range."""


class TransferToSameAccountError(InvalidRequestError):
    """A transfer names the same account as source and destination."""


class CommandIdReusedError(InvalidRequestError):
    """A command id (an HTTP ``Idempotency-Key``) already names a different command."""


class AccountNotFoundError(BankAccountsError, LookupError):
    """No account has the given id."""


class AccountClosedError(BankAccountsError):
    """The account is closed, so it refuses deposits, withdrawals and transfers."""


class InsufficientFundsError(BankAccountsError):
    """The withdrawal would take the balance below the overdraft limit."""


def check_amount(amount: object) -> int:
    """Return ``amount`` if it is an int (not a bool) from 1 to ``MAX_AMOUNT``."""
    if type(amount) is not int or not 1 <= amount <= MAX_AMOUNT:
        msg = f"amount must be an integer number of cents from 1 to {MAX_AMOUNT}"
        raise InvalidAmountError(msg)
    return amount


def check_overdraft_limit(limit: object) -> int:
    """Return ``limit`` if it is an int (not a bool) from 0 to ``MAX_AMOUNT``."""
    if type(limit) is not int or not 0 <= limit <= MAX_AMOUNT:
        msg = f"limit must be an integer number of cents from 0 to {MAX_AMOUNT}"
        raise InvalidOverdraftLimitError(msg)
    return limit


#: Characters no name or address may hold: the bidirectional embeddings, overrides
#: and isolates, which make text display in another order than it is stored
#: (U+202A-U+202E, U+2066-U+2069). Control characters and lone surrogates are
#: refused by their Unicode category (``Cc``, ``Cs``).
BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


def unfit_for_text(value: str) -> bool:
    """Whether ``value`` holds a character that is not text: a control character (NUL, a
    newline, DEL...), a bidirectional control, or a lone surrogate, which JSON's
    ``"\\ud800"`` escapes can carry but UTF-8 cannot encode (the event store would fail)."""
    return any(character in BIDI_CONTROLS or unicodedata.category(character) in ("Cc", "Cs") for character in value)


def check_account_details(full_name: object, email_address: object) -> None:
    if not isinstance(full_name, str) or not full_name.strip() or len(full_name) > MAX_FULL_NAME_LENGTH:
        msg = f"full_name must be a non-empty string of at most {MAX_FULL_NAME_LENGTH} characters"
        raise InvalidAccountDetailsError(msg)
    if not isinstance(email_address, str) or "@" not in email_address or len(email_address) > MAX_EMAIL_ADDRESS_LENGTH:
        msg = f'email_address must be a string containing "@" of at most {MAX_EMAIL_ADDRESS_LENGTH} characters'
        raise InvalidAccountDetailsError(msg)
    for name, value in (("full_name", full_name), ("email_address", email_address)):
        if unfit_for_text(value):
            msg = f"{name} must not hold control characters, bidirectional controls or lone surrogates"
            raise InvalidAccountDetailsError(msg)


class AppliedCommand(Aggregate):
    """Proof that the command with this id has been applied, saved with its effects.

    Its id is derived from the command id, so a second attempt to apply the same
    command would record version 1 of the same aggregate again: the event
    store's unique constraint refuses that, atomically with the rest of the save.
    ``fingerprint`` identifies the command's arguments, so that the same id sent
    with other arguments is refused instead of answered as if it were the same
    (records saved before it existed have none, and are not compared).
    """

    @event("Applied")
    def __init__(self, command_id: str, name: str, account_id: UUID, fingerprint: str = "") -> None:
        self.command_id = command_id
        self.name = name
        self.account_id = account_id
        self.fingerprint = fingerprint

    @staticmethod
    def create_id(command_id: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/bankaccounts/applied-commands/{command_id}")


class Account(Aggregate):
    """A bank account. Public methods check, private ``@event`` methods apply."""

    @event("Opened")
    def __init__(self, full_name: str, email_address: str) -> None:
        self.full_name = full_name
        self.email_address = email_address
        self.balance = 0
        self.overdraft_limit = 0
        self.is_closed = False

    @classmethod
    def open(cls, full_name: str, email_address: str) -> Account:
        check_account_details(full_name, email_address)
        return cls(full_name=full_name, email_address=email_address)

    def deposit(self, amount: int) -> None:
        self._check_open()
        self._deposited(check_amount(amount))

    def withdraw(self, amount: int) -> None:
        self._check_open()
        self._check_funds(check_amount(amount))
        self._withdrawn(amount)

    def send_transfer(self, to_account_id: UUID, amount: int) -> None:
        self._check_open()
        self._check_funds(check_amount(amount))
        self._transfer_sent(to_account_id, amount)

    def receive_transfer(self, from_account_id: UUID, amount: int) -> None:
        self._check_open()
        self._transfer_received(from_account_id, check_amount(amount))

    def set_overdraft_limit(self, limit: int) -> None:
        self._check_open()
        self._overdraft_limit_set(check_overdraft_limit(limit))

    def close(self) -> None:
        self._check_open()
        self._closed()

    def _check_open(self) -> None:
        if self.is_closed:
            msg = f"account {self.id} is closed"
            raise AccountClosedError(msg)

    def _check_funds(self, amount: int) -> None:
        if self.balance - amount < -self.overdraft_limit:
            msg = (
                f"insufficient funds in account {self.id}: balance {self.balance}, "
                f"overdraft limit {self.overdraft_limit}, requested {amount}"
            )
            raise InsufficientFundsError(msg)

    # The methods below run when an event is triggered *and* when it is replayed,
    # so they only apply state: the checks above have already passed.

    @event("Deposited")
    def _deposited(self, amount: int) -> None:
        self.balance += amount

    @event("Withdrawn")
    def _withdrawn(self, amount: int) -> None:
        self.balance -= amount

    @event("TransferSent")
    def _transfer_sent(self, to_account_id: UUID, amount: int) -> None:
        self.balance -= amount

    @event("TransferReceived")
    def _transfer_received(self, from_account_id: UUID, amount: int) -> None:
        self.balance += amount

    @event("OverdraftLimitSet")
    def _overdraft_limit_set(self, limit: int) -> None:
        self.overdraft_limit = limit

    @event("Closed")
    def _closed(self) -> None:
        self.is_closed = True
