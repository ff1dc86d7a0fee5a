"""The incumbent, ``eventsourcing`` 9.5.x: an ``Application`` and an equivalent bank account.

Configured the documented way, through environment variables passed to the application:
``PERSISTENCE_MODULE`` (``eventsourcing.popo`` / ``.sqlite`` / ``.postgres``), ``SQLITE_DBNAME``,
``POSTGRES_DBNAME``/``HOST``/``PORT``/``USER``/``PASSWORD``. Everything else is its default:
no aggregate cache, no compression or encryption, the locked (default) insert path on
PostgreSQL (``POSTGRES_ENABLE_DB_FUNCTIONS`` off), SQLite in WAL mode with SQLite's default
``synchronous`` (FULL in this build; the harness checks and records it).

Snapshots: a second application on the same database with ``IS_SNAPSHOTTING_ENABLED=y``, so
that the first (used by every other workload) does not look for snapshots on each load, which
eventsourcing does when snapshotting is enabled. With POPO the two applications do not share
memory, so the long aggregates (keys starting ``long-``) live in the snapshotting one.
"""

from __future__ import annotations

import importlib.metadata
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

from benchmarks.systems.base import AMOUNT, OWNER, Target

try:
    import eventsourcing
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event
    from eventsourcing.persistence import RecordConflictError
except ImportError:  # the harness reports it and skips the eventsourcing columns
    eventsourcing = None

VERSION = None if eventsourcing is None else importlib.metadata.version("eventsourcing")

MISSING = (
    "eventsourcing is not installed: the incumbent's columns are skipped. Install the "
    "benchmark extra to compare: pip install -e '.[bench]'"
)

_NAMESPACE = uuid.UUID("6f1c2a52-7d53-4f0e-9a57-3c0b1e6b3f10")


def env_for(target: Target) -> dict[str, str]:
    if target.backend == "memory":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if target.backend == "sqlite":
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": target.path}
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": target.dbname,
        "POSTGRES_HOST": target.host,
        "POSTGRES_PORT": str(target.port),
        "POSTGRES_USER": target.user,
        "POSTGRES_PASSWORD": "",
    }


if eventsourcing is not None:

    class Account(Aggregate):
        """The same account as eventkeep's ``BankAccount``: commands check, events apply."""

        @staticmethod
        def create_id(key: str, owner: str, currency: str = "EUR") -> uuid.UUID:
            return uuid.uuid5(_NAMESPACE, key)  # ids every process can compute from the key

        @event("Opened")
        def __init__(self, key: str, owner: str, currency: str = "EUR") -> None:
            self.owner = owner
            self.currency = currency
            self.balance = Decimal(0)
            self.is_open = True

        def deposit(self, amount: Decimal, *, reference: str | None = None) -> None:
            if not self.is_open:
                raise RuntimeError(f"account {self.id} is not open")
            if not isinstance(amount, Decimal) or amount <= 0:
                raise ValueError(f"an amount must be a positive Decimal, got {amount!r}")
            self._deposited(amount=amount, currency=self.currency, reference=reference)

        @event("Deposited")
        def _deposited(self, amount: Decimal, currency: str, reference: str | None) -> None:
            self.balance += amount

    class BankApp(Application[uuid.UUID]):
        name = "BankApp"


def account_id(key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, key)


class EventsourcingSubject:
    system = "eventsourcing"

    def __init__(self, target: Target, *, create_tables: bool = True) -> None:
        if eventsourcing is None:
            raise RuntimeError(MISSING)
        self.conflict: tuple[type[BaseException], ...] = (RecordConflictError,)
        env = env_for(target)
        if not create_tables:  # concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL
            env["CREATE_TABLE"] = "n"
        self.app = BankApp(env=env)
        self.memory = target.backend == "memory"
        self._snap: Any = None
        self._env = env

    @property
    def snap_app(self) -> Any:
        if self._snap is None:
            self._snap = BankApp(env={**self._env, "IS_SNAPSHOTTING_ENABLED": "y"})
        return self._snap

    def _app(self, key: str) -> Any:
        return self.snap_app if self.memory and key.startswith("long-") else self.app

    def create(self, key: str, reference: str) -> None:
        self.app.save(Account(key, OWNER))

    def command(self, key: str, reference: str) -> None:
        account = self.app.repository.get(account_id(key))
        account.deposit(AMOUNT, reference=reference)
        self.app.save(account)

    def create_with(self, key: str, events: int, reference: str) -> None:
        account = Account(key, OWNER)
        for _ in range(events - 1):
            account.deposit(AMOUNT, reference=reference)
        self._app(key).save(account)

    def create_many(self, keys: list[str], events: int, reference: str) -> None:
        accounts = []
        for key in keys:
            account = Account(key, OWNER)
            for _ in range(events - 1):
                account.deposit(AMOUNT, reference=reference)
            accounts.append(account)
        self._app(keys[0]).save(*accounts)

    def load(self, key: str) -> int:
        return int(self._app(key).repository.get(account_id(key)).version)

    def take_snapshot(self, key: str) -> bool:
        self.snap_app.take_snapshot(account_id(key))
        return True

    def load_snapshotted(self, key: str) -> int:
        return int(self.snap_app.repository.get(account_id(key)).version)

    def read_all(self) -> int:
        return _fold(self.app, None)

    def fill(self, streams: int, events: int, reference: str) -> None:
        per_stream = events // streams
        chunk = 100
        for first in range(0, streams, 10):
            group = [Account(f"fill{n}", OWNER) for n in range(first, min(first + 10, streams))]
            done = 1  # the Opened event
            while done < per_stream:
                size = min(chunk, per_stream - done)
                for account in group:
                    for _ in range(size):
                        account.deposit(AMOUNT, reference=reference)
                self.app.save(*group)
                done += size

    def catch_up(self) -> int:
        return _fold(self.app, defaultdict(Decimal))

    def close(self) -> None:
        self.app.close()
        if self._snap is not None:
            self._snap.close()


def _fold(app: Any, balances: defaultdict[uuid.UUID, Decimal] | None) -> int:
    """Page through the notification log, decoding each notification to its domain event."""
    recorder, to_event = app.recorder, app.mapper.to_domain_event
    start, count = 1, 0
    while True:
        page = recorder.select_notifications(start, 1000)
        for notification in page:
            domain_event = to_event(notification)
            if balances is not None and type(domain_event).__name__ == "Deposited":
                balances[domain_event.originator_id] += domain_event.amount
        count += len(page)
        if len(page) < 1000:
            return count
        start = page[-1].id + 1
