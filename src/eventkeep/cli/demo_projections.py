"""Step 10 of ``eventkeep demo``: SQL read models and the transfer reactor, fed by a runner."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from rich.console import Console
from rich.table import Table

from eventkeep import EventStore
from eventkeep.examples.bank.readmodels import AccountBalances, DailyTransactions
from eventkeep.examples.bank.transfers import TransferProcessor, request_transfer
from eventkeep.projections import Runner, projection_status

__all__ = ["show_read_models"]


def show_read_models(store: EventStore, out: Console, note: Callable[[str], None]) -> None:
    note(
        "Two transfers are requested as events of their own (transfer-<id>); the "
        "TransferProcessor reactor carries them out. A runner feeds it and two SQL read "
        "models, each exactly-once: changes and checkpoint commit together."
    )
    paid = request_transfer(store, "bob", "alice", Decimal("15.00"), transfer_id="t1")
    refused = request_transfer(store, "carol", "dave", Decimal("500.00"), transfer_id="t2")
    runner = Runner(store, [TransferProcessor(), AccountBalances(), DailyTransactions()])
    runner.run(until_caught_up=True, timeout=60)
    outcomes = Table("Transfer", "Outcome", "Caused by", title_justify="left")
    for stream in (paid, refused):
        request, outcome = list(store.read_stream(stream))[:2]
        outcomes.add_row(stream, outcome.type, f"position {request.position}")
    out.print(outcomes)
    with store.transaction() as tx:
        balances = tx.execute(
            "SELECT account, owner, balance_cents, events FROM account_balances ORDER BY account"
        )
        daily = tx.execute(
            "SELECT day, kind, count, total_cents FROM daily_transactions ORDER BY day, kind"
        )
    table = Table(
        "Account",
        "Owner",
        "Balance",
        "Events",
        title="SELECT * FROM account_balances",
        title_justify="left",
    )
    for account, owner, balance, events in balances:
        table.add_row(str(account), str(owner), _cents(balance), str(events))
    out.print(table)
    table = Table(
        "Day",
        "Kind",
        "Count",
        "Total",
        title="SELECT * FROM daily_transactions",
        title_justify="left",
    )
    for day, kind, count, total in daily:
        table.add_row(str(day), str(kind), str(count), _cents(total))
    out.print(table)
    status = Table("Projection", "State", "Position", "Lag", title_justify="left")
    for row in projection_status(store):
        status.add_row(row.name, row.state, str(row.position), str(row.lag_events))
    out.print(status)
    note(
        "In an application they run in a worker process (eventkeep projections run "
        "MODULE:PROJECTION...), and eventkeep projections status shows where each one is."
    )


def _cents(cents: int) -> str:
    return f"{Decimal(cents) / 100:,.2f}"
