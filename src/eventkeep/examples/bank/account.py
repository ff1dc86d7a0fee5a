"""The class-based bank account: commands check the rules, handlers change the state."""

from __future__ import annotations

import uuid
from decimal import Decimal

import eventkeep
from eventkeep.examples.bank.events import AccountClosed, AccountOpened, Deposited, Withdrawn

__all__ = [
    "AccountClosedError",
    "BankAccount",
    "BankError",
    "InsufficientFundsError",
    "transfer",
]


class BankError(Exception):
    """A command the bank refuses (a domain rule, not a storage problem)."""


class InsufficientFundsError(BankError):
    """A withdrawal larger than the balance: accounts never go below zero."""

    def __init__(self, account_id: str, balance: Decimal, amount: Decimal) -> None:
        super().__init__(
            f"insufficient funds in {account_id}: balance {balance}, cannot withdraw {amount}"
        )
        self.account_id = account_id
        self.balance = balance
        self.amount = amount


class AccountClosedError(BankError):
    """A command on an account that is not open."""


class BankAccount(eventkeep.Aggregate):
    """A bank account, stored in the stream ``bankaccount-<id>``.

    The state is the annotated fields; they change only in the ``@applies`` handlers, which
    are also what a load replays. A snapshot is taken every 50 events.
    """

    __snapshot_every__ = 50
    __state_version__ = 1

    owner: str = ""
    currency: str = "EUR"
    balance: Decimal = Decimal("0")
    is_open: bool = False

    # -- commands: check the rules, then record what happened ---------------------------------

    def open(self, owner: str, currency: str = "EUR") -> None:
        if self.version:
            raise BankError(f"account {self.id} already exists")
        if not owner.strip():
            raise BankError("an account needs an owner")
        self.record(AccountOpened(owner=owner, currency=currency))

    def deposit(self, amount: Decimal, *, reference: str | None = None) -> None:
        self._check_open()
        _check_amount(amount)
        self.record(Deposited(amount=amount, currency=self.currency, reference=reference))

    def withdraw(self, amount: Decimal, *, reference: str | None = None) -> None:
        self._check_open()
        _check_amount(amount)
        if amount > self.balance:
            raise InsufficientFundsError(self.id, self.balance, amount)
        self.record(Withdrawn(amount=amount, reference=reference))

    def close(self) -> None:
        self._check_open()
        if self.balance:
            raise BankError(f"account {self.id} still holds {self.balance}; withdraw it first")
        self.record(AccountClosed())

    def _check_open(self) -> None:
        if not self.is_open:
            raise AccountClosedError(f"account {self.id} is not open")

    # -- handlers: the only place the state changes --------------------------------------------

    @eventkeep.applies(AccountOpened)
    def _opened(self, event: AccountOpened) -> None:
        self.owner = event.owner
        self.currency = event.currency
        self.is_open = True

    @eventkeep.applies(Deposited)
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.amount

    @eventkeep.applies(Withdrawn)
    def _withdrawn(self, event: Withdrawn) -> None:
        self.balance -= event.amount

    @eventkeep.applies(AccountClosed)
    def _closed(self, event: AccountClosed) -> None:
        self.is_open = False


def _check_amount(amount: Decimal) -> None:
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise BankError(f"an amount must be a positive Decimal, got {amount!r}")


def transfer(
    accounts: eventkeep.Repository[BankAccount], source: str, target: str, amount: Decimal
) -> str:
    """Move ``amount`` from ``source`` to ``target``: both accounts change in one transaction.

    Returns the transfer's reference. Raises ``InsufficientFundsError`` (nothing recorded), or
    ``ConcurrencyError`` if either account changed since it was loaded (nothing written).
    """
    reference = f"transfer-{uuid.uuid4().hex[:8]}"
    payer, payee = accounts.load(source), accounts.load(target)
    payer.withdraw(amount, reference=reference)
    payee.deposit(amount, reference=reference)
    accounts.save(payer, payee)
    return reference
