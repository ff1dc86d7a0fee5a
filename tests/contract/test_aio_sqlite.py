"""The asyncio API on SQLite passes the whole contract suite, on real files (through
``eventkeep.testing.aio.SyncOverAsync``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventkeep import EventStore
from eventkeep.backends.sqlite import SQLiteStore
from eventkeep.testing import StoreContract, StoreFactory
from eventkeep.testing.aio import SyncOverAsync
from eventkeep.testing.tamper import tamper_event


class TestAsyncSQLiteStore(StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Iterator[StoreFactory]:
        self.opened: list[SyncOverAsync] = []
        numbers = itertools.count()

        def factory(**options: Any) -> EventStore:
            path = tmp_path / f"contract-{next(numbers)}.db"
            store = SyncOverAsync.open(f"sqlite:///{path}", **options)
            self.opened.append(store)
            return store  # type: ignore[return-value]

        yield factory
        for store in self.opened:
            store.close()

    def tamper(self, store: EventStore, stream_id: str, version: int) -> None:
        assert isinstance(store, SyncOverAsync)
        tamper_event(store.sync, stream_id, version)

    def reopen(self, store: EventStore) -> EventStore:
        assert isinstance(store, SyncOverAsync)
        assert isinstance(store.sync, SQLiteStore)
        other = SyncOverAsync.open(
            f"sqlite:///{store.sync.path}", max_event_bytes=store.sync.codec.max_event_bytes
        )
        self.opened.append(other)
        return other  # type: ignore[return-value]
