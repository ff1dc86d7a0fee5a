"""The bank read models built from scratch in one pass over the log, to compare with."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from eventkeep import EventStore
from eventkeep.examples.bank import AccountOpened, Deposited, Withdrawn
from eventkeep.examples.bank.readmodels import cents


def scratch_balances(store: EventStore) -> list[tuple[Any, ...]]:
    rows: dict[str, list[Any]] = {}
    for recorded in store.read_all(stream_prefix="bankaccount-"):
        event = recorded.event
        row = rows.setdefault(recorded.stream_id.removeprefix("bankaccount-"), ["", 0, 0])
        if isinstance(event, AccountOpened):
            row[0] = event.owner
        elif isinstance(event, Deposited):
            row[1] += cents(event.amount)
        elif isinstance(event, Withdrawn):
            row[1] -= cents(event.amount)
        else:
            continue
        row[2] += 1
    return sorted((account, *row) for account, row in rows.items())


def scratch_daily(store: EventStore) -> list[tuple[Any, ...]]:
    count: Counter[tuple[str, str]] = Counter()
    total: defaultdict[tuple[str, str], int] = defaultdict(int)
    for recorded in store.read_all(stream_prefix="bankaccount-"):
        event = recorded.event
        day = recorded.recorded_at.date().isoformat()
        if isinstance(event, Deposited):
            key = (day, "deposit")
        elif isinstance(event, Withdrawn):
            key = (day, "withdrawal")
        else:
            continue
        count[key] += 1
        total[key] += cents(event.amount)
    return sorted((*key, count[key], total[key]) for key in count)


def table(store: EventStore, statement: str) -> list[tuple[Any, ...]]:
    with store.transaction() as tx:
        return sorted(tuple(row) for row in tx.execute(statement))


def stored_balances(store: EventStore) -> list[tuple[Any, ...]]:
    return table(store, "SELECT account, owner, balance_cents, events FROM account_balances")


def stored_daily(store: EventStore) -> list[tuple[Any, ...]]:
    return table(store, "SELECT day, kind, count, total_cents FROM daily_transactions")


def check_transfers(store: EventStore) -> int:
    """Every processed transfer request acted on exactly once; returns how many were done."""
    outcomes: Counter[str] = Counter()
    moves: Counter[tuple[str, str]] = Counter()
    requested = set()
    for recorded in store.read_all():
        if recorded.type == "bank.TransferRequested":
            requested.add(recorded.stream_id)
        elif recorded.type in ("bank.TransferCompleted", "bank.TransferRejected"):
            outcomes[recorded.stream_id] += 1
            assert recorded.causation_id is not None
        elif recorded.type in ("bank.Deposited", "bank.Withdrawn"):
            reference = recorded.data.get("reference")
            if reference:
                moves[(reference, recorded.type)] += 1
                assert recorded.causation_id is not None
    assert all(count == 1 for count in outcomes.values()), "a transfer decided twice"
    assert all(count == 1 for count in moves.values()), "money moved twice"
    assert set(outcomes) == requested, "a transfer request never handled"
    return len(outcomes)
