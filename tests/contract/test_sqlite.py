"""The SQLite backend passes the whole contract suite, on real files."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import eventkeep
from eventkeep import EventStore
from eventkeep.testing import StoreContract, StoreFactory


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Iterator[StoreFactory]:
        opened: list[EventStore] = []
        numbers = itertools.count()

        def factory(**options: Any) -> EventStore:
            path = tmp_path / f"contract-{next(numbers)}.db"
            store = eventkeep.open_store(f"sqlite:///{path}", **options)
            opened.append(store)
            return store

        yield factory
        for store in opened:
            store.close()
