"""What every part of the contract suite stands on: the fixtures a backend provides, and helpers.

A backend's test module subclasses :class:`eventkeep.testing.StoreContract` and overrides the
``make_store`` fixture with a factory of fresh, empty stores::

    class TestSQLiteStore(StoreContract):
        @pytest.fixture
        def make_store(self, tmp_path):
            stores = []

            def factory(**options):
                path = tmp_path / f"store-{len(stores)}.db"
                store = eventkeep.open_store(f"sqlite:///{path}", **options)
                stores.append(store)
                return store

            yield factory
            for store in stores:
                store.close()

The factory takes keyword options of the store (the suite passes ``max_event_bytes=``), must
return a new empty store on every call, and its stores must decode through a registry holding
the suite's ``contract.*`` event classes (the default registry does). Tests may close a store
themselves, so closing one twice must be harmless.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, NamedTuple

import pytest

from eventkeep.events import Event, RawEvent
from eventkeep.store import EventStore, StoreStats, StreamInfo
from eventkeep.testing.events import Deposited
from eventkeep.testing.tamper import tamper_event

__all__ = ["ContractBase", "StoreFactory", "StoreState", "assert_unchanged", "deposits", "state"]

StoreFactory = Callable[..., EventStore]
"""Returns a fresh, empty store; keyword arguments are store options such as max_event_bytes."""


class ContractBase:
    """The fixtures and hooks every part of the contract suite shares."""

    @pytest.fixture
    def make_store(self) -> StoreFactory:
        raise NotImplementedError(
            "subclass eventkeep.testing.StoreContract and override the make_store fixture "
            "with a factory of fresh, empty stores"
        )

    @pytest.fixture
    def store(self, make_store: StoreFactory) -> EventStore:
        return make_store()

    def tamper(self, store: EventStore, stream_id: str, version: int) -> None:
        """Rewrite the data of one stored event behind the store's back.

        The default knows the memory and SQLite backends; other backends override it. The new
        data must still be valid JSON so that only the hash chain can tell.
        """
        tamper_event(store, stream_id, version)


class StoreState(NamedTuple):
    """Everything observable about a store's contents, to compare before and after a call."""

    log: tuple[tuple[Any, ...], ...]
    streams: tuple[StreamInfo, ...]
    stats: StoreStats
    head: int


def state(store: EventStore) -> StoreState:
    log = tuple(
        (r.position, r.stream_id, r.version, r.event_id, r.type, r.schema_version, r.raw_data)
        for r in store.read_all()
    )
    return StoreState(log, tuple(store.list_streams()), store.stats(), store.head_position())


def assert_unchanged(store: EventStore, before: StoreState) -> None:
    after = state(store)
    assert after == before, "the store changed although the call was refused"


def deposits(*amounts: int | str) -> list[Deposited]:
    """One ``Deposited`` event per amount."""
    return [Deposited(amount=Decimal(a)) for a in amounts]


def raw(type_name: str, n: int = 0, **data: Any) -> RawEvent:
    return RawEvent(type_name, {"n": n, **data})


def versions(events: Iterable[Any]) -> list[int]:
    return [e.version for e in events]


def positions(events: Iterable[Any]) -> list[int]:
    return [e.position for e in events]


def is_strictly_increasing(values: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


def typed(events: Iterable[Any]) -> list[Event | RawEvent]:
    return [e.event for e in events]
