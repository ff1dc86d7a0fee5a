"""The bank's events: facts, named in the past tense, immutable, never rewritten.

Type names are namespaced (``bank.Deposited``) so they cannot clash with another module's
``Deposited``; they are what is stored, so the classes can move or be renamed freely.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import eventkeep

__all__ = ["AccountClosed", "AccountEvent", "AccountOpened", "Deposited", "Withdrawn"]


class AccountOpened(eventkeep.Event):
    """An account was opened for ``owner``, holding money in ``currency``."""

    __event_type__ = "bank.AccountOpened"
    __aliases__ = ("bank.Opened",)  # the type's name in earlier releases: still readable

    owner: str
    currency: str = "EUR"


class Deposited(eventkeep.Event):
    """Money was paid in.

    Schema version 2 added ``currency``. Version 1 events are still stored as they were written
    (``{"amount": "25.00"}``) and are upcast when read: release 1 only had euro accounts.
    """

    __event_type__ = "bank.Deposited"
    __schema_version__ = 2

    amount: Decimal
    currency: str
    reference: str | None = None

    @eventkeep.upcasts(1)
    def add_currency(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "currency": "EUR"}


class Withdrawn(eventkeep.Event):
    """Money was paid out."""

    __event_type__ = "bank.Withdrawn"

    amount: Decimal
    reference: str | None = None


class AccountClosed(eventkeep.Event):
    """The account was closed; it takes no more deposits or withdrawals."""

    __event_type__ = "bank.AccountClosed"


AccountEvent = AccountOpened | Deposited | Withdrawn | AccountClosed
"""Every event of an account (the decider's ``evolve`` is annotated with it)."""
