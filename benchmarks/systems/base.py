"""What every system under test offers the workloads, and where it stores its events."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

AMOUNT = Decimal("10.00")
"""Every deposit's amount."""

OWNER = "Ada Lovelace"


@dataclass(frozen=True)
class Target:
    """Where a system keeps its events: a backend and, for SQLite and PostgreSQL, a database."""

    backend: str  # "memory" | "sqlite" | "postgres"
    path: str = ""  # the SQLite file
    host: str = "127.0.0.1"
    port: int = 0
    user: str = "postgres"
    dbname: str = ""

    @property
    def pg_url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"


class Subject(Protocol):
    """One system on one backend. Aggregates are named by the harness (``key``)."""

    system: str
    conflict: tuple[type[BaseException], ...]
    """What ``command`` raises when another writer moved the stream on (retried by the caller)."""

    def create(self, key: str, reference: str) -> None:
        """Open a new account: one event, one transaction."""

    def command(self, key: str, reference: str) -> None:
        """Load the account, deposit (the command checks the account is open), save 1 event."""

    def create_with(self, key: str, events: int, reference: str) -> None:
        """A new account with ``events`` events (opened + deposits), saved in one transaction."""

    def create_many(self, keys: list[str], events: int, reference: str) -> None:
        """Like ``create_with`` for each key, all saved in one transaction (untimed setup)."""

    def load(self, key: str) -> int:
        """Rehydrate the account from its events (no snapshot); returns its version."""

    def take_snapshot(self, key: str) -> bool:
        """Snapshot the account; False when the system has no snapshots."""

    def load_snapshotted(self, key: str) -> int:
        """Rehydrate the account from its snapshot (and any events after it)."""

    def read_all(self) -> int:
        """Read the whole global log, decoding every event; returns how many."""

    def fill(self, streams: int, events: int, reference: str) -> None:
        """Bulk-load ``events`` deposits spread over ``streams`` new accounts (for catch-up)."""

    def catch_up(self) -> int:
        """Fold the whole log into a balance per account, as a projection; returns events seen."""

    def close(self) -> None: ...


def reference_for(payload: int) -> str:
    """A deposit reference that makes eventkeep's encoded Deposited data ``payload`` bytes.

    ``{"amount":"10.00","currency":"EUR","reference":"..."}`` is 50 bytes plus the reference.
    """
    return "r" * max(1, payload - 50)
