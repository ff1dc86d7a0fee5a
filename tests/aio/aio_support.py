"""Shared by the asyncio API's tests: ``url`` (a fresh store's URL on each backend), events."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

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
        if stats.get("pool_available", 0) + growing != stats.get("pool_size", 0):
            return False
    return True
