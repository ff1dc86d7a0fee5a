"""Fixtures of the server tests: a store and a real server over it (see http_harness)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from http_harness import RunningServer

import eventkeep


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[eventkeep.EventStore]:
    store = eventkeep.open_store(f"sqlite:///{tmp_path / 'events.db'}")
    yield store
    store.close()


@pytest.fixture
def server(sqlite_store: eventkeep.EventStore) -> Iterator[RunningServer]:
    running = RunningServer(sqlite_store, heartbeat=0.5)
    yield running
    running.stop()


@pytest.fixture
def memory_server() -> Iterator[RunningServer]:
    store = eventkeep.open_store("memory://")
    running = RunningServer(store)
    yield running
    running.stop()
    store.close()
