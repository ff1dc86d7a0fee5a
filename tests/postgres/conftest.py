"""Fixtures of the PostgreSQL-only tests: a fresh schema (and store) per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import eventkeep
from eventkeep.backends.postgres import PostgresStore
from pg_fixtures import PgServer, Target, new_schema_name


@pytest.fixture
def target(pg_server: PgServer) -> Iterator[Target]:
    place = Target(pg_server, new_schema_name())
    yield place
    pg_server.drop_schema(place.schema)


@pytest.fixture
def pg_store(target: Target) -> Iterator[PostgresStore]:
    store = eventkeep.open_store(target.url)
    assert isinstance(store, PostgresStore)
    yield store
    store.close()
