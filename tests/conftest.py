"""Shared fixtures: every backend-agnostic test runs against each backend available.

``store`` (and ``store_url``, ``make_store``) are parametrized over the backends in
``BACKENDS``: memory and SQLite always; PostgreSQL joins when its test cluster is available
(see ``tests/pg_cluster.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import eventkeep
import pg_fixtures
from eventkeep import EventStore
from pg_fixtures import pg_replica, pg_server  # noqa: F401 - fixtures (a replica: on demand)

BACKENDS = ["memory", "sqlite"]
if pg_fixtures.wanted():
    BACKENDS.append("postgres")

_counter = itertools.count()


def backend_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL for a fresh, empty store of ``backend``."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'store-{next(_counter)}.db'}"
    if backend == "postgres":
        return pg_fixtures.fresh_store_url(request)
    raise pytest.UsageError(f"unknown backend {backend!r}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., EventStore]]:
    """A factory of fresh, empty stores of the current backend; all closed at teardown."""
    opened: list[EventStore] = []

    def factory(**options: object) -> EventStore:
        store = eventkeep.open_store(backend_url(backend, tmp_path, request), **options)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., EventStore]) -> EventStore:
    return make_store()
