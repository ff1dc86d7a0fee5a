"""The whole contract suite on PostgreSQL stores that read from a streaming replica.

Every store appends to a primary and reads from its hot standby (``read_url=``). A store
object's own reads wait for the replica to replay what it wrote or saw
(``eventkeep.backends.postgres.replica``); the suite's cases with two handles on one store (one
writes, the other reads at once) need more: the stores commit with ``synchronous_commit =
remote_apply`` on a synchronous standby, so a commit returns once the replica has replayed it,
as in a deployment that wants read-your-writes across processes (docs/postgres.md). Slow: a
second server pair.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pg_fixtures import (
    APPLIED,
    ReplicaPair,
    delete_postgres,
    fresh_store_url,
    require_driver,
    tamper_postgres,
)

require_driver()

import test_postgres  # noqa: E402 - the class by its module: collected once, there

import eventkeep  # noqa: E402 - after the check that the driver is there
from eventkeep import EventStore  # noqa: E402
from eventkeep.backends.postgres import PostgresStore  # noqa: E402
from pg_fixtures import PgServer  # noqa: E402

pytestmark = pytest.mark.slow


class TestPostgresStoreReadingFromAReplica(test_postgres.TestPostgresStore):
    @pytest.fixture
    def make_store(self, request: pytest.FixtureRequest) -> Iterator[Any]:
        pair: ReplicaPair = request.getfixturevalue("pg_replica")
        server = PgServer(pair.primary.url, pair.primary)
        opened: list[EventStore] = []

        def factory(**options: Any) -> EventStore:
            url = fresh_store_url(request, server)
            store = eventkeep.open_store(url, read_url=pair.read_url, **APPLIED, **options)
            self.urls[id(store)] = url
            self.read_url = pair.read_url
            opened.append(store)
            return store

        yield factory
        for store in opened:
            store.close()

    @pytest.fixture(autouse=True)
    def _server(self, request: pytest.FixtureRequest) -> None:
        pair: ReplicaPair = request.getfixturevalue("pg_replica")
        self.server = PgServer(pair.primary.url, pair.primary)
        self.urls: dict[int, str] = {}

    def tamper(self, store: EventStore, stream_id: str, version: int) -> None:
        # Committed once the replica replayed it, as the stores' own commits are (APPLIED):
        # else a read from the replica may come before the edit.
        assert isinstance(store, PostgresStore)
        tamper_postgres(self.server.url, store.schema, stream_id, version, applied=True)

    def delete_behind_the_log(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, PostgresStore)
        delete_postgres(self.server.url, store.schema, stream_id, version, applied=True)

    def reopen(self, store: EventStore) -> EventStore:
        url = self.urls.get(id(store))
        if url is None:
            return store
        return eventkeep.open_store(url, registry=store.registry, read_url=self.read_url, **APPLIED)
