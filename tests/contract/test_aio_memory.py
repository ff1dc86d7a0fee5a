"""The asyncio API on the memory store passes the whole contract suite (through
``eventkeep.testing.aio.SyncOverAsync``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from eventkeep import EventStore
from eventkeep.testing import StoreContract, StoreFactory
from eventkeep.testing.aio import SyncOverAsync
from eventkeep.testing.tamper import tamper_event


class TestAsyncMemoryStore(StoreContract):
    @pytest.fixture
    def make_store(self) -> Iterator[StoreFactory]:
        opened: list[SyncOverAsync] = []

        def factory(**options: Any) -> EventStore:
            store = SyncOverAsync.open("memory://", **options)
            opened.append(store)
            return store  # type: ignore[return-value]

        yield factory
        for store in opened:
            store.close()

    def tamper(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, SyncOverAsync)
        tamper_event(store.sync, stream_id, version)
