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

Three hooks reach behind the API, and a backend other than memory and SQLite overrides them:
``tamper(store, stream_id, version)`` rewrites a stored event's data,
``delete_behind_the_log(store, stream_id, version)`` deletes one, and ``reopen(store)`` opens a
second handle on the same database.

The functions the suite calls with stores (``repository``, ``copy_store``, ``export_file``,
``import_file``) are methods too, so that a suite run against another API than ``EventStore``
(the asyncio one, see :class:`eventkeep.testing.aio.AsyncStoreContract`) calls that API's own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import IO, Any, NamedTuple

import pytest

from eventkeep.backends.sqlite import SQLiteStore
from eventkeep.domain.repository import Repository
from eventkeep.moving import CopyReport, FileImport, copy_store, export_file, import_file
from eventkeep.store import EventStore, StoreStats, StreamInfo
from eventkeep.store.events import Event, RawEvent
from eventkeep.testing.events import Deposited
from eventkeep.testing.tamper import delete_event_behind_the_log, tamper_event

__all__ = [
    "ContractBase",
    "StoreFactory",
    "StoreState",
    "assert_unchanged",
    "deposits",
    "reopen_store",
    "state",
]

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

    def delete_behind_the_log(self, store: EventStore, stream_id: str, version: int) -> None:
        """Delete one stored event behind the store's back, past its operations log (an
        intruder with the rights to disable triggers). The default knows memory and SQLite."""
        delete_event_behind_the_log(store, stream_id, version)

    def reopen(self, store: EventStore) -> EventStore:
        """A second, independent handle on the database ``store`` writes to.

        Tests use it to check that what one handle wrote (events, idempotency records, heads)
        is durable and seen by another connection; they close the handle when done. The
        default opens a new SQLite connection for a SQLite store and returns the store itself
        otherwise (memory has nothing to reconnect to); other backends should override it.
        """
        return reopen_store(store)

    # -- what the suite calls with stores -------------------------------------------------------

    def repository(self, store: EventStore, aggregate: Any, **options: Any) -> Repository[Any]:
        """``Repository(store, aggregate, **options)``."""
        return Repository(store, aggregate, **options)

    def copy_store(self, source: EventStore, target: EventStore, **options: Any) -> CopyReport:
        """``eventkeep.moving.copy_store(source, target, **options)``."""
        return copy_store(source, target, **options)

    def export_file(self, store: EventStore, out: IO[bytes], **options: Any) -> int:
        """``eventkeep.moving.export_file(store, out, **options)``."""
        return export_file(store, out, **options)

    def import_file(self, store: EventStore, lines: Iterable[bytes], **options: Any) -> FileImport:
        """``eventkeep.moving.import_file(store, lines, **options)``."""
        return import_file(store, lines, **options)


class StoreState(NamedTuple):
    """Everything observable about a store's contents, to compare before and after a call."""

    log: tuple[tuple[Any, ...], ...]
    streams: tuple[StreamInfo, ...]
    stats: StoreStats
    head: int


def reopen_store(store: EventStore) -> EventStore:
    """A new handle on the same database for the backends this package knows, else ``store``."""
    if isinstance(store, SQLiteStore):
        return SQLiteStore(
            store.path,
            registry=store.registry,
            max_event_bytes=store.codec.max_event_bytes,
            synchronous=store.synchronous,
        )
    return store


def state(store: EventStore) -> StoreState:
    log = tuple(
        (
            r.position,
            r.stream_id,
            r.version,
            r.event_id,
            r.type,
            r.schema_version,
            r.raw_data,
            r.metadata,
            r.recorded_at,
        )
        for r in store.read_all()
    )
    return StoreState(log, tuple(store.list_streams()), store.stats(), store.head_position())


def assert_unchanged(store: EventStore, before: StoreState) -> None:
    after = state(store)
    assert after == before, "the store changed although the call was refused"


def deposits(*amounts: int | str) -> list[Deposited]:
    """One ``Deposited`` event per amount."""
    return [Deposited(amount=Decimal(a)) for a in amounts]


def versions(events: Iterable[Any]) -> list[int]:
    return [e.version for e in events]


def positions(events: Iterable[Any]) -> list[int]:
    return [e.position for e in events]


def is_strictly_increasing(values: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(values))


def typed(events: Iterable[Any]) -> list[Event | RawEvent]:
    return [e.event for e in events]
