from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from bankaccounts.domain import (
    MAX_AMOUNT,
    Account,
    AccountClosedError,
    InsufficientFundsError,
    InvalidAccountDetailsError,
    InvalidAmountError,
    InvalidOverdraftLimitError,
)


def new_account() -> Account:
    return Account.open("Ada Lovelace", "ada@example.com")


def test_open() -> None:
    account = new_account()
    assert (account.full_name, account.email_address) == ("Ada Lovelace", "ada@example.com")
    assert (account.balance, account.overdraft_limit, account.is_closed) == (0, 0, False)
    assert account.version == 1


@pytest.mark.parametrize(
    ("full_name", "email_address"),
    [
        ("", "ada@example.com"),
        ("  ", "ada@example.com"),
        ("x" * 201, "ada@example.com"),
        (None, "ada@example.com"),
        ("Ada", "ada.example.com"),
        ("Ada", "a" * 243 + "@example.com"),
        ("Ada", 7),
        ("x\ud800y", "ada@example.com"),  # a lone surrogate: no UTF-8 for it
        ("Ada", "ada\udfff@example.com"),
        ("Ada\x00", "ada@example.com"),
        ("Ada\nLovelace", "ada@example.com"),
        ("Ada\x7f", "ada@example.com"),
        ("Ada\x85", "ada@example.com"),  # a C1 control
        ("\u202eecalevoL adA", "ada@example.com"),  # right-to-left override
        ("Ada", "\u2066ada@example.com"),  # left-to-right isolate
    ],
)
def test_open_rejects_invalid_details(full_name: object, email_address: object) -> None:
    with pytest.raises(InvalidAccountDetailsError):
        Account.open(full_name, email_address)  # type: ignore[arg-type]  # wrong types too, on purpose


@pytest.mark.parametrize(
    "full_name", ["Zoë Ødegård", "李小龙", "عائشة", "Ada\u200dLovelace", "\U0001f600 Ada", "Ada\u200fx"]
)
def test_open_accepts_text_in_any_script(full_name: str) -> None:
    """Letters of any script, emoji, and joiners and marks that shape text (U+200D, U+200F)."""
    assert Account.open(full_name, "ada@example.com").full_name == full_name


def test_deposit_and_withdraw() -> None:
    account = new_account()
    account.deposit(500)
    account.withdraw(200)
    assert account.balance == 300
    assert account.version == 3


@pytest.mark.parametrize("amount", [0, -5, MAX_AMOUNT + 1, 1.0, "5", True, None])
def test_amounts_must_be_positive_integers_of_cents(amount: object) -> None:
    account = new_account()
    for command in (account.deposit, account.withdraw):
        with pytest.raises(InvalidAmountError):
            command(amount)  # type: ignore[arg-type]  # wrong types too, on purpose
    assert account.version == 1
    assert not account.collect_events()[1:]  # nothing but the Opened event is pending


def test_withdraw_down_to_the_overdraft_limit_and_no_further() -> None:
    account = new_account()
    account.set_overdraft_limit(1000)
    account.deposit(100)
    account.withdraw(1100)
    assert account.balance == -1000
    with pytest.raises(InsufficientFundsError):
        account.withdraw(1)
    assert account.balance == -1000


@pytest.mark.parametrize("limit", [-1, MAX_AMOUNT + 1, 2.5, False])
def test_overdraft_limit_must_be_in_range(limit: object) -> None:
    with pytest.raises(InvalidOverdraftLimitError):
        new_account().set_overdraft_limit(limit)  # type: ignore[arg-type]  # wrong types too, on purpose


def test_closed_account_refuses_everything() -> None:
    account = new_account()
    account.deposit(100)
    account.close()
    version = account.version
    commands: list[tuple[Callable[..., object], tuple[object, ...]]] = [
        (account.deposit, (1,)),
        (account.withdraw, (1,)),
        (account.send_transfer, (uuid.uuid4(), 1)),
        (account.receive_transfer, (uuid.uuid4(), 1)),
        (account.set_overdraft_limit, (1,)),
        (account.close, ()),
    ]
    for command, args in commands:
        with pytest.raises(AccountClosedError):
            command(*args)
    assert account.version == version


def test_transfers_move_balances() -> None:
    source, destination = new_account(), new_account()
    source.deposit(100)
    source.send_transfer(destination.id, 60)
    destination.receive_transfer(source.id, 60)
    assert (source.balance, destination.balance) == (40, 60)
    with pytest.raises(InsufficientFundsError):
        source.send_transfer(destination.id, 41)
