"""Shared by the asyncio API's tests: ``url`` (a fresh store's URL on each backend), events."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import pg_fixtures
from eventkeep.aio import AsyncEventStore
from eventkeep.testing.events import Deposited


@pytest.fixture
def url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh store's URL on ``backend`` (the root conftest's parametrized fixture)."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return pg_fixtures.fresh_store_url(request)


def deposits(count: int) -> list[Deposited]:
    return [Deposited(amount=Decimal(n)) for n in range(1, count + 1)]


def pool_is_idle(store: AsyncEventStore) -> bool:
    """On PostgreSQL: every pooled connection is back in its pool (the synchronous store's,
    and the asyncio API's own), none in a transaction."""
    db = getattr(store.sync, "_db", None)
    if db is None:
        return True
    pools = [db._pool]
    if store._native is not None:
        pools.append(store._native.db.pool)  # type: ignore[attr-defined]
    for pool in pools:
        stats = pool.get_stats()
        growing = int(getattr(pool, "_growing", False))  # a connection on its way in
        # The synchronous store's slot keeps one connection out of its pool between calls.
        resting = int(pool is db._pool and _slot_resting(db._slot))
        if stats.get("pool_available", 0) + growing + resting != stats.get("pool_size", 0):
            return False
    return True


def _slot_resting(slot: Any) -> bool:
    """The slot holds a connection, no call uses it, and it is in no transaction."""
    from psycopg.pq import TransactionStatus

    if slot.conn is None or not slot.lock.acquire(blocking=False):
        return False
    try:
        return bool(
            slot.conn is not None and slot.conn.info.transaction_status == TransactionStatus.IDLE
        )
    finally:
        slot.lock.release()
