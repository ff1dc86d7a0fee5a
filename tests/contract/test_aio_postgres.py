"""The asyncio API on PostgreSQL passes the whole contract suite, on a real server (through
``eventkeep.testing.aio.SyncOverAsync``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pg_fixtures import PgServer, fresh_store_url, require_driver, tamper_postgres

require_driver()

from eventkeep import EventStore  # noqa: E402 - after the check that the driver is there
from eventkeep.backends.postgres import PostgresStore  # noqa: E402
from eventkeep.testing import StoreContract, StoreFactory  # noqa: E402
from eventkeep.testing.aio import SyncOverAsync  # noqa: E402


class TestAsyncPostgresStore(StoreContract):
    @pytest.fixture
    def make_store(
        self, pg_server: PgServer, request: pytest.FixtureRequest
    ) -> Iterator[StoreFactory]:
        opened: list[SyncOverAsync] = []

        def factory(**options: Any) -> EventStore:
            store = SyncOverAsync.open(fresh_store_url(request, pg_server), **options)
            opened.append(store)
            return store  # type: ignore[return-value]

        yield factory
        for store in opened:
            store.close()

    @pytest.fixture(autouse=True)
    def _server(self, pg_server: PgServer) -> None:
        self.server = pg_server

    def tamper(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, SyncOverAsync)
        assert isinstance(store.sync, PostgresStore)
        tamper_postgres(self.server.url, store.sync.schema, stream_id, version)
