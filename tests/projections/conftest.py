"""Fixtures of the projection tests: SQL-capable stores and worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from projection_harness import Processes

import eventkeep
import pg_fixtures
from eventkeep import EventStore


def _postgres_ready() -> bool:
    """PostgreSQL joins these tests once its backend implements store transactions (the
    primitive projections stand on); until then its backend is still being written."""
    if not pg_fixtures.wanted():
        return False
    try:
        from eventkeep.backends.postgres import PostgresStore
    except ImportError:
        return False
    return PostgresStore._transaction is not EventStore._transaction


BACKENDS = ["memory", "sqlite", *(["postgres"] if _postgres_ready() else [])]
SQL_BACKENDS = [b for b in BACKENDS if b != "memory"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Overrides the shared ``backend``: the backends that support projections."""
    return str(request.param)


@pytest.fixture(params=SQL_BACKENDS)
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store URL on each backend with a SQL database (SQL read models need one)."""
    if request.param == "postgres":
        return str(pg_fixtures.fresh_store_url(request))
    return f"sqlite:///{tmp_path / 'sql-store.db'}"


@pytest.fixture
def sql_store(sql_url: str) -> Iterator[EventStore]:
    with eventkeep.open_store(sql_url) as store:
        yield store


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.close()
