"""eventkeep: the ``BankAccount`` example through a ``Repository``, on ``open_store(url)``."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal

import eventkeep
from benchmarks.systems.base import AMOUNT, OWNER, Target
from eventkeep.examples.bank import BankAccount
from eventkeep.examples.bank.events import Deposited

try:  # projections (issue 5) may be absent or mid-change: catch-up then folds read_all
    from eventkeep.projections import HandlerContext, Projection, Runner, handles
except ImportError:  # pragma: no cover - depends on the tree
    Projection = None  # type: ignore[assignment,misc]

CATCH_UP_HOW = (
    "eventkeep.projections Runner, one external projection (balance per stream)"
    if Projection is not None
    else "a read_all fold (eventkeep.projections not importable)"
)


def store_url(target: Target) -> str:
    if target.backend == "memory":
        return "memory://"
    if target.backend == "sqlite":
        return f"sqlite:///{target.path}"  # synchronous=FULL, WAL: the store's defaults
    return target.pg_url


class EventkeepSubject:
    system = "eventkeep"
    conflict: tuple[type[BaseException], ...] = (eventkeep.ConcurrencyError,)

    def __init__(self, target: Target) -> None:
        self.store = eventkeep.open_store(store_url(target))
        # Snapshots off, like eventsourcing's default application: one read per load.
        self.accounts = eventkeep.Repository(self.store, BankAccount, snapshots=False)
        self.snapshotted = eventkeep.Repository(self.store, BankAccount)  # every 50 events

    def create(self, key: str, reference: str) -> None:
        account = self.accounts.create(key)
        account.open(OWNER)
        self.accounts.save(account)

    def command(self, key: str, reference: str) -> None:
        account = self.accounts.load(key)
        account.deposit(AMOUNT, reference=reference)
        self.accounts.save(account)

    def create_with(self, key: str, events: int, reference: str) -> None:
        account = self.accounts.create(key)
        account.open(OWNER)
        for _ in range(events - 1):
            account.deposit(AMOUNT, reference=reference)
        self.accounts.save(account)

    def create_many(self, keys: list[str], events: int, reference: str) -> None:
        accounts = []
        for key in keys:
            account = self.accounts.create(key)
            account.open(OWNER)
            for _ in range(events - 1):
                account.deposit(AMOUNT, reference=reference)
            accounts.append(account)
        self.accounts.save(*accounts)

    def load(self, key: str) -> int:
        return self.accounts.load(key).version

    def take_snapshot(self, key: str) -> bool:
        self.snapshotted.load(key)  # a load that replays >= 50 events writes a snapshot
        return self.store.load_snapshot(self.snapshotted.stream_id(key)) is not None

    def load_snapshotted(self, key: str) -> int:
        return self.snapshotted.load(key).version

    def read_all(self) -> int:
        count = 0
        for recorded in self.store.read_all():
            recorded.event  # noqa: B018 - decode into the typed event
            count += 1
        return count

    def fill(self, streams: int, events: int, reference: str) -> None:
        per_stream = events // streams
        chunk = 100
        deposit = Deposited(amount=AMOUNT, currency="EUR", reference=reference)
        for first in range(0, streams, 10):
            group = [f"bankaccount-fill{n}" for n in range(first, min(first + 10, streams))]
            for start in range(0, per_stream, chunk):
                size = min(chunk, per_stream - start)
                self.store.append_many(
                    [eventkeep.StreamAppend(s, [deposit] * size, start) for s in group]
                )

    def catch_up(self) -> int:
        if Projection is None:
            return _fold(self.store)
        # A projection of a new name each time, so that every run starts from position 0.
        named = type("Balances", (_Balances,), {"name": f"bench.balances.{uuid.uuid4().hex}"})
        projection = named()
        Runner(self.store, [projection]).run(until_caught_up=True, timeout=600)
        return projection.seen

    def close(self) -> None:
        self.store.close()


def _fold(store: eventkeep.EventStore) -> int:
    balances: defaultdict[str, Decimal] = defaultdict(Decimal)
    count = 0
    for recorded in store.read_all():
        event = recorded.event
        if isinstance(event, Deposited):
            balances[recorded.stream_id] += event.amount
        count += 1
    return count


if Projection is not None:

    class _Balances(Projection):
        """An external read model: a dict of balances, checkpointed once per batch."""

        name = "bench.balances"
        transactional = False
        batch_size = 1000

        def __init__(self) -> None:
            self.balances: defaultdict[str, Decimal] = defaultdict(Decimal)
            self.seen = 0

        @handles(Deposited)
        def deposited(self, event: Deposited, ctx: HandlerContext) -> None:
            recorded = ctx.recorded
            if recorded is not None:
                self.balances[recorded.stream_id] += event.amount
            self.seen += 1
