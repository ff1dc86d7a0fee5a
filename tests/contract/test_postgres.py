"""The PostgreSQL backend passes the whole contract suite, on a real server.

Every store lives in a schema of its own (dropped after the test); see ``tests/pg_fixtures.py``
for where the server comes from.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pg_fixtures import (
    PgServer,
    delete_postgres,
    fresh_store_url,
    require_driver,
    tamper_postgres,
)

require_driver()

import eventkeep  # noqa: E402 - after the check that the driver is there
from eventkeep import EventStore  # noqa: E402
from eventkeep.backends.postgres import PostgresStore  # noqa: E402
from eventkeep.testing import StoreContract, StoreFactory  # noqa: E402


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def make_store(
        self, pg_server: PgServer, request: pytest.FixtureRequest
    ) -> Iterator[StoreFactory]:
        opened: list[EventStore] = []

        def factory(**options: Any) -> EventStore:
            url = fresh_store_url(request, pg_server)
            store = eventkeep.open_store(url, **options)
            self.urls[id(store)] = url
            opened.append(store)
            return store

        yield factory
        for store in opened:
            store.close()

    @pytest.fixture(autouse=True)
    def _server(self, pg_server: PgServer) -> None:
        self.server = pg_server
        self.urls: dict[int, str] = {}

    def reopen(self, store: EventStore) -> EventStore:
        """A second PostgreSQL store object (its own pool) on the same schema."""
        url = self.urls.get(id(store))
        if url is None:
            return store
        return eventkeep.open_store(url, registry=store.registry)

    def tamper(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, PostgresStore)
        tamper_postgres(self.server.url, store.schema, stream_id, version)

    def delete_behind_the_log(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, PostgresStore)
        delete_postgres(self.server.url, store.schema, stream_id, version)
