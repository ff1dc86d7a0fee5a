"""Invoice numbers without gaps: each new invoice takes the number after the last one. The
decision reads the ``InvoiceCreated`` events (a types-only query: no tag narrows it) and
appends under the condition that no invoice was created after them, so two invoices created
at once never share a number, and a number is never skipped."""

from __future__ import annotations

import eventkeep
from eventkeep import DecisionProjection, DecisionState, Query, QueryItem
from eventkeep.store import Writer

__all__ = ["InvoiceCreated", "create_invoice", "last_invoice_number"]


class InvoiceCreated(eventkeep.Event):
    __event_type__ = "dcb.InvoiceCreated"
    __tags__ = ("invoice:{invoice_number}", "customer:{customer}")
    invoice_number: int
    customer: str
    cents: int


def last_invoice_number() -> DecisionProjection[int]:
    query = Query([QueryItem(types=[InvoiceCreated])])
    return DecisionProjection(query, 0, lambda _, event: event.invoice_number)  # type: ignore[union-attr]


def create_invoice(writer: Writer, customer: str, cents: int) -> int:
    """Create the next invoice; returns its number."""
    number = 0

    def decide(state: DecisionState) -> list[eventkeep.Event]:
        nonlocal number
        number = state.last + 1
        return [InvoiceCreated(invoice_number=number, customer=customer, cents=cents)]

    eventkeep.execute_decision(writer, decide, retries=20, last=last_invoice_number())
    return number
