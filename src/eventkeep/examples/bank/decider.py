"""The same bank account as a decider: three pure functions over an immutable state.

It reads and writes the very same events (and streams) as :class:`BankAccount`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import msgspec

import eventkeep
from eventkeep.examples.bank.account import AccountClosedError, BankError, InsufficientFundsError
from eventkeep.examples.bank.events import (
    AccountClosed,
    AccountEvent,
    AccountOpened,
    Deposited,
    Withdrawn,
)

__all__ = [
    "Account",
    "CloseAccount",
    "Command",
    "Deposit",
    "OpenAccount",
    "Withdraw",
    "account_decider",
    "decide",
    "evolve",
    "initial_state",
]


# -- commands: requests, named in the imperative ----------------------------------------------


@dataclass(frozen=True)
class OpenAccount:
    owner: str
    currency: str = "EUR"


@dataclass(frozen=True)
class Deposit:
    amount: Decimal
    reference: str | None = None


@dataclass(frozen=True)
class Withdraw:
    amount: Decimal
    reference: str | None = None


@dataclass(frozen=True)
class CloseAccount:
    pass


Command = OpenAccount | Deposit | Withdraw | CloseAccount


# -- state --------------------------------------------------------------------------------------


class Account(msgspec.Struct, frozen=True):
    """An account's state: replaced, never mutated (a msgspec struct, so it snapshots)."""

    owner: str = ""
    currency: str = "EUR"
    balance: Decimal = Decimal("0")
    is_open: bool = False
    opened: bool = False


def initial_state() -> Account:
    return Account()


def evolve(state: Account, event: AccountEvent) -> Account:
    """The state after ``event``."""
    match event:
        case AccountOpened():
            return msgspec.structs.replace(
                state, owner=event.owner, currency=event.currency, is_open=True, opened=True
            )
        case Deposited():
            return msgspec.structs.replace(state, balance=state.balance + event.amount)
        case Withdrawn():
            return msgspec.structs.replace(state, balance=state.balance - event.amount)
        case AccountClosed():
            return msgspec.structs.replace(state, is_open=False)


def decide(command: Command, state: Account) -> list[AccountEvent]:
    """The events ``command`` leads to, or a ``BankError`` when a rule refuses it."""
    match command:
        case OpenAccount():
            if state.opened:
                raise BankError("the account already exists")
            if not command.owner.strip():
                raise BankError("an account needs an owner")
            return [AccountOpened(owner=command.owner, currency=command.currency)]
        case Deposit():
            _check(state, command.amount)
            return [
                Deposited(
                    amount=command.amount, currency=state.currency, reference=command.reference
                )
            ]
        case Withdraw():
            _check(state, command.amount)
            if command.amount > state.balance:
                raise InsufficientFundsError("account", state.balance, command.amount)
            return [Withdrawn(amount=command.amount, reference=command.reference)]
        case CloseAccount():
            _check(state, None)
            if state.balance:
                raise BankError(f"the account still holds {state.balance}; withdraw it first")
            return [AccountClosed()]


def _check(state: Account, amount: Decimal | None) -> None:
    if not state.is_open:
        raise AccountClosedError("the account is not open")
    if amount is not None and (not amount.is_finite() or amount <= 0):
        raise BankError(f"an amount must be a positive Decimal, got {amount!r}")


account_decider = eventkeep.Decider(
    initial_state=initial_state, evolve=evolve, decide=decide, category="bankaccount"
)
"""``Repository(store, account_decider)`` works on the ``bankaccount-<id>`` streams."""
