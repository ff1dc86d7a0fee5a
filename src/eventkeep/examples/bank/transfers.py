"""Transfers as a process: requested in their own stream, carried out by a reactor.

``request_transfer`` records a ``TransferRequested`` in ``transfer-<id>``. The
``TransferProcessor`` reactor reacts: it withdraws from the payer, deposits to the payee and
records ``TransferCompleted`` (or ``TransferRejected`` when the payer cannot pay), all in one
transaction together with its checkpoint, so a crash never pays twice. The new events carry the
request's correlation id and name it as their cause.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import eventkeep
from eventkeep.errors import NotFoundError
from eventkeep.examples.bank.account import BankAccount, BankError
from eventkeep.projections import HandlerContext, Reactor, handles
from eventkeep.store import NO_STREAM, EventStore

__all__ = [
    "TransferCompleted",
    "TransferProcessor",
    "TransferRejected",
    "TransferRequested",
    "request_transfer",
]


class TransferRequested(eventkeep.Event):
    __event_type__ = "bank.TransferRequested"

    source: str
    target: str
    amount: Decimal


class TransferCompleted(eventkeep.Event):
    __event_type__ = "bank.TransferCompleted"


class TransferRejected(eventkeep.Event):
    __event_type__ = "bank.TransferRejected"

    reason: str


def request_transfer(
    store: EventStore,
    source: str,
    target: str,
    amount: Decimal,
    *,
    transfer_id: str | None = None,
) -> str:
    """Record a transfer request; returns its stream id (``transfer-<id>``)."""
    if source == target:
        raise BankError("a transfer needs two different accounts")
    stream = f"transfer-{transfer_id or uuid.uuid4().hex[:12]}"
    request = TransferRequested(source=source, target=target, amount=amount)
    store.append(stream, [request], expected_version=NO_STREAM)
    return stream


class TransferProcessor(Reactor):
    """Carries out requested transfers (a two-account saga, in one transaction)."""

    name = "bank.transfers"
    version = 1
    stream_prefix = "transfer-"

    @handles(TransferRequested)
    def requested(self, event: TransferRequested, ctx: HandlerContext) -> None:
        # The repository works in the reactor's transaction: the accounts' new events (with the
        # ids and metadata record() gave them), the outcome and the checkpoint commit together.
        tx = ctx.tx
        assert tx is not None  # a reactor is transactional
        accounts = eventkeep.Repository(tx, BankAccount)
        transfer = ctx._current().stream_id
        try:
            payer, payee = accounts.load(event.source), accounts.load(event.target)
            payer.withdraw(event.amount, reference=transfer)
            payee.deposit(event.amount, reference=transfer)
        except (BankError, NotFoundError) as exc:
            ctx.append(transfer, [TransferRejected(reason=str(exc))], expected_version=1)
            return
        accounts.save(payer, payee)
        ctx.append(transfer, [TransferCompleted()], expected_version=1)
