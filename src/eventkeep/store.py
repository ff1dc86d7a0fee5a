"""The ``EventStore`` interface, shared by every backend.

The public methods here check input, encode events and enforce the rules that do not depend on
the database; a backend implements the small set of ``_``-prefixed primitives underneath. That
way every backend refuses the same bad input with the same errors, and the contract suite
(:mod:`eventkeep.testing`) is the specification they all pass.
"""

from __future__ import annotations

import abc
import contextlib
import enum
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Self, cast

from eventkeep.codec import DEFAULT_MAX_EVENT_BYTES, Codec, PreparedEvent
from eventkeep.errors import (
    ConcurrencyError,
    ConfigurationError,
    DuplicateEventIdError,
    ValidationError,
)
from eventkeep.events import Event, NewEvent, RawEvent, TypeRegistry, default_registry
from eventkeep.hashing import VerifyReport
from eventkeep.recorded import RecordedEvent
from eventkeep.transaction import Transaction
from eventkeep.validation import (
    MAX_SCHEMA_VERSION,
    check_count,
    check_name,
    check_optional_count,
    check_stream_id,
    check_text,
)

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "EventStore",
    "ExpectedVersion",
    "Snapshot",
    "StoreStats",
    "StreamAppend",
    "StreamInfo",
    "Writer",
]

PAGE_SIZE = 1000
"""How many events a backend fetches per round trip while iterating a read."""

POLL_INTERVALS = (0.002, 0.1)
"""``wait_for_events`` polls the head from the first to the second (seconds), doubling."""


class ExpectedVersion(enum.Enum):
    """What an append expects of the stream, besides an exact int version."""

    ANY = "any"
    """Append whatever the stream's version."""
    NO_STREAM = "no_stream"
    """The stream must not exist yet (the same as expecting version 0)."""
    STREAM_EXISTS = "stream_exists"
    """The stream must already hold at least one event."""

    def __repr__(self) -> str:
        return self.name


ANY = ExpectedVersion.ANY
NO_STREAM = ExpectedVersion.NO_STREAM
STREAM_EXISTS = ExpectedVersion.STREAM_EXISTS

Expected = ExpectedVersion | int
AppendItem = Event | RawEvent | NewEvent


class StreamAppend(NamedTuple):
    """One stream's part of an atomic multi-stream append."""

    stream_id: str
    events: Sequence[AppendItem]
    expected_version: Expected = ANY
    metadata: Mapping[str, Any] | None = None


class AppendResult(NamedTuple):
    """Where an append's events were written: stream versions and global positions."""

    stream_id: str
    versions: tuple[int, ...]
    positions: tuple[int, ...]

    @property
    def version(self) -> int:
        """The stream's version after the append."""
        return self.versions[-1]

    @property
    def position(self) -> int:
        """The global position of the last event written."""
        return self.positions[-1]


class StreamInfo(NamedTuple):
    stream_id: str
    version: int
    last_position: int


class Snapshot(NamedTuple):
    """An aggregate's state saved at a stream version, to shorten replay.

    ``type`` and ``schema_version`` name the state's class and its version: a snapshot whose
    schema version differs from the current class is stale and is ignored by loaders.
    """

    stream_id: str
    version: int
    type: str
    schema_version: int
    data: bytes
    recorded_at: int


class StoreStats(NamedTuple):
    events: int
    streams: int
    head_position: int
    types: dict[str, int]


class PreparedAppend(NamedTuple):
    """A stream's events checked and encoded, as a backend receives them."""

    stream_id: str
    expected: Expected
    events: list[PreparedEvent]


class StoredIdentity(NamedTuple):
    """What the idempotency check needs to know of an already stored event."""

    event_id: bytes
    stream_id: str
    version: int
    position: int
    type: str
    data: bytes


def expected_matches(expected: Expected, actual: int) -> bool:
    if expected is ANY:
        return True
    if expected is NO_STREAM:
        return actual == 0
    if expected is STREAM_EXISTS:
        return actual > 0
    return actual == expected


def replayed_result(batch: PreparedAppend, stored: Iterable[StoredIdentity]) -> AppendResult | None:
    """The original result if ``batch`` was appended before (a retried append), else None.

    Raises ``DuplicateEventIdError`` when some of the event ids are stored but not as this exact
    append: in another stream, at other versions, for other data, or only some of them.
    """
    by_id = {row.event_id: row for row in stored}
    if not by_id:
        return None
    rows = [by_id.get(ev.event_id) for ev in batch.events]
    for ev, row in zip(batch.events, rows, strict=True):
        if row is None:
            raise DuplicateEventIdError(
                f"stream {batch.stream_id!r}: some event ids of this append are already stored "
                f"and others are not (event {_uuid(ev.event_id)} is new); "
                "this is neither a retry of one append nor a new append"
            )
        if row.stream_id != batch.stream_id or row.type != ev.type or row.data != ev.data:
            raise DuplicateEventIdError(
                f"event id {_uuid(ev.event_id)} is already stored for a different event "
                f"({row.type!r} in stream {row.stream_id!r} at version {row.version})"
            )
    found = [row for row in rows if row is not None]
    first = found[0].version
    if [row.version for row in found] != list(range(first, first + len(found))):
        raise DuplicateEventIdError(
            f"stream {batch.stream_id!r}: the event ids of this append are stored, "
            "but not as one contiguous append in this order"
        )
    if not expected_matches(batch.expected, first - 1):
        raise DuplicateEventIdError(
            f"stream {batch.stream_id!r}: the event ids of this append are stored after version "
            f"{first - 1}, not after the expected version {batch.expected!r}"
        )
    return AppendResult(
        batch.stream_id,
        tuple(row.version for row in found),
        tuple(row.position for row in found),
    )


def _uuid(raw: bytes) -> str:
    import uuid

    return str(uuid.UUID(bytes=raw))


def _check_expected(value: Any) -> Expected:
    if isinstance(value, ExpectedVersion):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return check_count(value, what="expected_version")
    raise ValidationError(
        "expected_version must be ANY, NO_STREAM, STREAM_EXISTS or an int >= 0 "
        f"(the stream's version before the append), got {value!r}"
    )


class EventStore(abc.ABC):
    """An append-only event store: streams of events, and one global log across them."""

    url: str

    def __init__(
        self,
        *,
        registry: TypeRegistry | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        check_count(max_event_bytes, what="max_event_bytes", minimum=1)
        self.registry = registry if registry is not None else default_registry
        self.codec = Codec(self.registry, max_event_bytes=max_event_bytes)
        self._last_clock = 0
        self._appended = threading.Condition()
        self._append_count = 0
        self._open_tx = threading.local()  # .tx: the transaction open on this thread, if any

    # -- writing ------------------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        events: Iterable[AppendItem],
        expected_version: Expected = ANY,
        metadata: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        """Append events to one stream, atomically: all of them or none.

        ``expected_version`` is the stream's version before the append (0 for a new stream), or
        ``ANY``, ``NO_STREAM`` or ``STREAM_EXISTS``; a mismatch raises ``ConcurrencyError`` and
        writes nothing. Re-sending an append whose event ids are already stored returns the
        original result and writes nothing.
        """
        # Passed on as given: _prepare refuses a single event before it lists the events.
        items = cast("Sequence[AppendItem]", events)
        return self.append_many([StreamAppend(stream_id, items, expected_version, metadata)])[0]

    def append_many(self, appends: Iterable[StreamAppend]) -> list[AppendResult]:
        """Append to several streams in one transaction, each with its own expected version.

        Called on a thread that has a transaction of this store open, it joins that
        transaction (as ``tx.append_many``): its events commit or roll back with it.
        """
        joined = self.joined_transaction()
        if joined is not None:
            return joined.append_many(appends)
        results = self._append(self._prepare_many(appends))
        self._notify_appended()
        return results

    def _prepare_many(self, appends: Iterable[StreamAppend]) -> list[PreparedAppend]:
        batches = [self._prepare(item) for item in appends]
        if not batches:
            raise ValidationError("append_many needs at least one StreamAppend")
        streams = [b.stream_id for b in batches]
        if len(set(streams)) != len(streams):
            raise ValidationError("append_many takes each stream at most once")
        ids = [ev.event_id for b in batches for ev in b.events]
        if len(set(ids)) != len(ids):
            raise ValidationError("the same event id appears twice in one append")
        return batches

    # -- transactions and waiting -------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction for appends, checkpoints and read-model SQL: all commit, or none.

        Leaving the block with an exception rolls everything back. See
        :class:`eventkeep.transaction.Transaction`. One transaction per thread at a time: store
        methods called on the thread while it is open join it, and opening a second one on the
        same thread raises ``ValidationError`` at once.
        """
        if self.joined_transaction() is not None:
            raise ValidationError(
                "a transaction of this store is already open on this thread: use it (tx) "
                "instead of opening another; store methods called on this thread join it"
            )
        with self._transaction() as tx:
            self._open_tx.tx = tx
            try:
                yield tx
            finally:
                tx.closed = True
                self._open_tx.tx = None
        if tx.appended:
            self._notify_appended()

    def joined_transaction(self) -> Transaction | None:
        """The transaction of this store open on the calling thread, if any.

        Store methods called on that thread join it: appends, snapshots and reads run inside it
        (reads see its writes), and commit or roll back with it. They never wait for a lock
        their own caller holds.
        """
        tx: Transaction | None = getattr(self._open_tx, "tx", None)
        return tx if tx is not None and not tx.closed else None

    def wait_for_events(self, after: int, timeout: float | None = None) -> bool:
        """Block until the global log holds an event beyond position ``after``.

        True as soon as it does (at once if it already does), False once ``timeout`` seconds
        have passed (None: wait as long as it takes). Appends made through this store object
        wake the wait at once; appends by other processes are seen by polling the head, with
        an interval that starts at a few milliseconds and doubles up to 0.1 s.
        """
        check_count(after, what="after")
        deadline = None if timeout is None else time.monotonic() + timeout
        pause, longest = POLL_INTERVALS
        while True:
            seen = self._append_count
            if self._head_position() > after:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            with self._appended:
                if self._append_count == seen:  # else an append came in meanwhile: look again
                    self._appended.wait(pause if remaining is None else min(pause, remaining))
            pause = min(pause * 2, longest)

    def _notify_appended(self) -> None:
        with self._appended:
            self._append_count += 1
            self._appended.notify_all()

    def _prepare(self, item: Any) -> PreparedAppend:
        if not isinstance(item, StreamAppend):
            raise ValidationError(f"append_many takes StreamAppend items, got {item!r:.80}")
        stream_id = check_stream_id(item.stream_id)
        expected = _check_expected(item.expected_version)
        events = item.events
        if isinstance(events, Event | RawEvent | NewEvent | str | bytes | Mapping):
            raise ValidationError(
                f"events must be a list of events, got a single {type(events).__name__}"
            )
        try:
            items = list(events)
        except TypeError:
            raise ValidationError(
                f"events must be a list of events, got {type(events).__name__}"
            ) from None
        if not items:
            raise ValidationError(f"no events to append to stream {stream_id!r}")
        prepare = self.codec.prepare
        metadata = item.metadata
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValidationError(f"metadata must be a mapping, got {type(metadata).__name__}")
        return PreparedAppend(stream_id, expected, [prepare(ev, metadata) for ev in items])

    def _clock(self, floor: int = 0) -> int:
        """The store's clock in microseconds: never behind ``floor`` or the last reading."""
        now = max(time.time_ns() // 1000, floor, self._last_clock)
        self._last_clock = now
        return now

    # -- reading ------------------------------------------------------------------------------

    def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> Iterator[RecordedEvent]:
        """The stream's events with ``from_version <= version <= to_version``.

        Forwards by default; ``backwards=True`` yields the same range from the end, so
        ``read_stream(s, backwards=True, limit=1)`` is the stream's last event.
        """
        stream_id = check_stream_id(stream_id)
        low = check_count(from_version, what="from_version", minimum=1)
        high = check_optional_count(to_version, what="to_version", minimum=0)
        remaining = check_optional_count(limit, what="limit")
        return self._paged_stream(stream_id, low, high, bool(backwards), remaining)

    def _paged_stream(
        self, stream_id: str, low: int, high: int | None, backwards: bool, remaining: int | None
    ) -> Iterator[RecordedEvent]:
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            page = self._read_stream_page(stream_id, low, high, backwards, size)
            yield from page
            if len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            if backwards:
                high = page[-1].version - 1
            else:
                low = page[-1].version + 1

    def read_all(
        self,
        after: int | None = None,
        limit: int | None = None,
        *,
        types: Iterable[str | type[Event]] | None = None,
        stream_prefix: str | None = None,
    ) -> Iterator[RecordedEvent]:
        """The global log in position order, from just after position ``after``.

        ``types`` keeps only the given event types (names or classes, aliases included);
        ``stream_prefix`` keeps only streams whose id starts with it (e.g. a category
        ``"account-"``).
        """
        position = check_count(0 if after is None else after, what="after")
        remaining = check_optional_count(limit, what="limit")
        type_names = None if types is None else self._type_names(types)
        if stream_prefix is not None:
            check_text(stream_prefix, what="stream_prefix")
        return self._paged_all(position, remaining, type_names, stream_prefix or None)

    def _paged_all(
        self,
        position: int,
        remaining: int | None,
        type_names: tuple[str, ...] | None,
        prefix: str | None,
    ) -> Iterator[RecordedEvent]:
        if type_names == ():
            return
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            page = self._read_all_page(position, size, type_names, prefix)
            yield from page
            if len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            position = page[-1].position

    @staticmethod
    def _type_names(types: Iterable[str | type[Event]]) -> tuple[str, ...]:
        if isinstance(types, str) or (isinstance(types, type) and issubclass(types, Event)):
            types = [types]
        names: list[str] = []
        for item in types:
            if isinstance(item, str):
                names.append(check_text(item, what="event type name"))
            elif isinstance(item, type) and issubclass(item, Event):
                names.extend((item.__event_type__, *item.__aliases__))
            else:
                raise ValidationError(f"types takes type names or Event classes, got {item!r}")
        return tuple(dict.fromkeys(names))

    def stream_version(self, stream_id: str) -> int:
        """The stream's current version: the number of events in it (0 when it does not exist)."""
        return self._stream_version(check_stream_id(stream_id))

    def list_streams(self, prefix: str = "", *, limit: int | None = None) -> list[StreamInfo]:
        """Streams whose id starts with ``prefix``, sorted by id."""
        check_text(prefix, what="prefix")
        return self._list_streams(prefix, check_optional_count(limit, what="limit"))

    def head_position(self) -> int:
        """The position of the last event in the global log (0 when the store is empty)."""
        return self._head_position()

    def stats(self) -> StoreStats:
        """Counts of events and streams, the head position, and events per type."""
        return self._stats()

    def verify(self) -> VerifyReport:
        """Walk every stream's hash chain and report the first broken link per stream."""
        return self._verify()

    # -- snapshots ----------------------------------------------------------------------------

    def save_snapshot(
        self, stream_id: str, version: int, state_type: str, schema_version: int, data: bytes
    ) -> None:
        """Save a state snapshot of ``stream_id`` at ``version`` (replacing one at that version).

        Snapshots live beside the events in their own table; unlike events they are a cache
        and may be deleted and rebuilt at any time.
        """
        stream_id = check_stream_id(stream_id)
        check_count(version, what="version", minimum=1)
        check_count(schema_version, what="schema_version", minimum=1, maximum=MAX_SCHEMA_VERSION)
        if not isinstance(data, bytes):
            raise ValidationError(f"snapshot data must be bytes, got {type(data).__name__}")
        self._save_snapshot(
            Snapshot(
                stream_id,
                version,
                check_name(state_type, what="snapshot state type"),
                schema_version,
                data,
                self._clock(),
            )
        )

    def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        """The latest snapshot of ``stream_id`` at or below ``max_version``, if any."""
        stream_id = check_stream_id(stream_id)
        limit = check_optional_count(max_version, what="max_version")
        return self._load_snapshot(stream_id, 2**62 if limit is None else limit)

    def delete_snapshots(self, stream_prefix: str = "") -> int:
        """Delete the snapshots of streams starting with ``stream_prefix``; returns how many."""
        check_text(stream_prefix, what="stream_prefix")
        return self._delete_snapshots(stream_prefix)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:  # noqa: B027 - backends without resources need no close
        """Release the store's connections; it cannot be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- backend primitives -------------------------------------------------------------------

    def _transaction(self) -> contextlib.AbstractContextManager[Transaction]:
        """Open a transaction (see ``transaction``); commit when the block ends normally."""
        raise ConfigurationError(f"{type(self).__name__} does not support transactions yet")

    @abc.abstractmethod
    def _append(self, batches: list[PreparedAppend]) -> list[AppendResult]:
        """Write all batches in one transaction, checking expected versions and idempotency."""

    @abc.abstractmethod
    def _read_stream_page(
        self, stream_id: str, low: int, high: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]: ...

    @abc.abstractmethod
    def _read_all_page(
        self, after: int, limit: int, types: tuple[str, ...] | None, prefix: str | None
    ) -> list[RecordedEvent]: ...

    @abc.abstractmethod
    def _stream_version(self, stream_id: str) -> int: ...

    @abc.abstractmethod
    def _list_streams(self, prefix: str, limit: int | None) -> list[StreamInfo]: ...

    @abc.abstractmethod
    def _head_position(self) -> int: ...

    @abc.abstractmethod
    def _stats(self) -> StoreStats: ...

    @abc.abstractmethod
    def _verify(self) -> VerifyReport: ...

    @abc.abstractmethod
    def _save_snapshot(self, snapshot: Snapshot) -> None: ...

    @abc.abstractmethod
    def _load_snapshot(self, stream_id: str, max_version: int) -> Snapshot | None: ...

    @abc.abstractmethod
    def _delete_snapshots(self, prefix: str) -> int: ...


Writer = EventStore | Transaction
"""What the domain layer (``Repository``, deciders, snapshots) writes through: a store, or an
open transaction of one. Both offer append, append_many, the reads, stream_version and
snapshots with the same signatures; inside a transaction everything commits together."""


def concurrency_error(batch: PreparedAppend, actual: int) -> ConcurrencyError:
    return ConcurrencyError(batch.stream_id, batch.expected, actual)
