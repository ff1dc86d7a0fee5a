"""The asyncio API on PostgreSQL passes the whole contract suite, on a real server (through
``eventkeep.testing.aio.SyncOverAsync``)."""

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

from eventkeep import EventStore  # noqa: E402 - after the check that the driver is there
from eventkeep.backends.postgres import PostgresStore  # noqa: E402
from eventkeep.testing import StoreFactory  # noqa: E402
from eventkeep.testing.aio import AsyncStoreContract, SyncOverAsync  # noqa: E402


class TestAsyncPostgresStore(AsyncStoreContract):
    @pytest.fixture
    def make_store(
        self, pg_server: PgServer, request: pytest.FixtureRequest
    ) -> Iterator[StoreFactory]:
        self.opened: list[SyncOverAsync] = []

        def factory(**options: Any) -> EventStore:
            url = fresh_store_url(request, pg_server)
            store = SyncOverAsync.open(url, **options)
            self.urls[id(store)] = url
            self.opened.append(store)
            return store  # type: ignore[return-value]

        yield factory
        for store in self.opened:
            store.close()

    @pytest.fixture(autouse=True)
    def _server(self, pg_server: PgServer) -> None:
        self.server = pg_server
        self.urls: dict[int, str] = {}

    def reopen(self, store: EventStore) -> EventStore:
        """A second async store (its own pool and threads) on the same schema."""
        url = self.urls.get(id(store))
        if url is None:
            return store
        other = SyncOverAsync.open(url, registry=store.registry)
        self.opened.append(other)
        return other  # type: ignore[return-value]

    def tamper(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, SyncOverAsync)
        assert isinstance(store.sync, PostgresStore)
        tamper_postgres(self.server.url, store.sync.schema, stream_id, version)

    def delete_behind_the_log(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, SyncOverAsync)
        assert isinstance(store.sync, PostgresStore)
        delete_postgres(self.server.url, store.sync.schema, stream_id, version)
