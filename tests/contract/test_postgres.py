"""The PostgreSQL backend passes the whole contract suite, on a real server.

Every store lives in a schema of its own (dropped after the test); see ``tests/pg_fixtures.py``
for where the server comes from.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import eventkeep
from eventkeep import EventStore
from eventkeep.backends.postgres import PostgresStore
from eventkeep.testing import StoreContract, StoreFactory
from pg_fixtures import PgServer, fresh_store_url, tamper_postgres


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def make_store(
        self, pg_server: PgServer, request: pytest.FixtureRequest
    ) -> Iterator[StoreFactory]:
        opened: list[EventStore] = []

        def factory(**options: Any) -> EventStore:
            store = eventkeep.open_store(fresh_store_url(request, pg_server), **options)
            opened.append(store)
            return store

        yield factory
        for store in opened:
            store.close()

    @pytest.fixture(autouse=True)
    def _server(self, pg_server: PgServer) -> None:
        self.server = pg_server

    def tamper(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, PostgresStore)
        tamper_postgres(self.server.url, store.schema, stream_id, version)
