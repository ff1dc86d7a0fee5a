"""The bank's read models: account balances and a daily transactions summary, as SQL tables.

Both are :class:`~eventkeep.projections.SQLProjection`: tables in the store's own database,
updated exactly-once (each batch's changes commit with the checkpoint). Readers query the views
``account_balances`` and ``daily_transactions``. Amounts are kept in integer cents, exact and
portable between SQLite and PostgreSQL.

    eventkeep projections run eventkeep.examples.bank.readmodels:AccountBalances
"""

from __future__ import annotations

from decimal import Decimal

from eventkeep.examples.bank.events import AccountOpened, Deposited, Withdrawn
from eventkeep.projections import HandlerContext, SQLProjection, handles

__all__ = ["AccountBalances", "DailyTransactions", "cents"]

ACCOUNT_STREAMS = "bankaccount-"


def cents(amount: Decimal) -> int:
    return int(amount * 100)


class AccountBalances(SQLProjection):
    """One row per account: owner, balance, number of events, last position applied."""

    name = "bank.account_balances"
    version = 1
    stream_prefix = ACCOUNT_STREAMS
    tables = ("account_balances",)
    schema = (
        "CREATE TABLE {account_balances} ("
        "account TEXT PRIMARY KEY, owner TEXT NOT NULL DEFAULT '', "
        "balance_cents INTEGER NOT NULL DEFAULT 0, events INTEGER NOT NULL DEFAULT 0)",
    )

    MOVE = (
        "INSERT INTO {account_balances} (account, balance_cents, events) VALUES (?, ?, 1) "
        "ON CONFLICT (account) DO UPDATE SET "
        "balance_cents = {account_balances}.balance_cents + excluded.balance_cents, "
        "events = {account_balances}.events + 1"
    )

    @handles(AccountOpened)
    def opened(self, event: AccountOpened, ctx: HandlerContext) -> None:
        ctx.execute(
            "INSERT INTO {account_balances} (account, owner, events) VALUES (?, ?, 1) "
            "ON CONFLICT (account) DO UPDATE SET owner = excluded.owner, "
            "events = {account_balances}.events + 1",
            (_account(ctx), event.owner),
        )

    @handles(Deposited)
    def deposited(self, event: Deposited, ctx: HandlerContext) -> None:
        ctx.execute(self.MOVE, (_account(ctx), cents(event.amount)))

    @handles(Withdrawn)
    def withdrawn(self, event: Withdrawn, ctx: HandlerContext) -> None:
        ctx.execute(self.MOVE, (_account(ctx), -cents(event.amount)))


class DailyTransactions(SQLProjection):
    """Per UTC day and kind (deposit, withdrawal): how many, and how much in total."""

    name = "bank.daily_transactions"
    version = 1
    stream_prefix = ACCOUNT_STREAMS
    tables = ("daily_transactions",)
    schema = (
        "CREATE TABLE {daily_transactions} ("
        "day TEXT NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL, "
        "total_cents INTEGER NOT NULL, PRIMARY KEY (day, kind))",
    )

    ADD = (
        "INSERT INTO {daily_transactions} (day, kind, count, total_cents) VALUES (?, ?, 1, ?) "
        "ON CONFLICT (day, kind) DO UPDATE SET count = {daily_transactions}.count + 1, "
        "total_cents = {daily_transactions}.total_cents + excluded.total_cents"
    )

    @handles(Deposited)
    def deposited(self, event: Deposited, ctx: HandlerContext) -> None:
        ctx.execute(self.ADD, (_day(ctx), "deposit", cents(event.amount)))

    @handles(Withdrawn)
    def withdrawn(self, event: Withdrawn, ctx: HandlerContext) -> None:
        ctx.execute(self.ADD, (_day(ctx), "withdrawal", cents(event.amount)))


def _account(ctx: HandlerContext) -> str:
    return ctx._current().stream_id.removeprefix(ACCOUNT_STREAMS)


def _day(ctx: HandlerContext) -> str:
    return ctx._current().recorded_at.date().isoformat()
