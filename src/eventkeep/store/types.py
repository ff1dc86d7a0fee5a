"""The store's values: expected versions, what an append takes and returns, stream and store
facts, snapshots, and the idempotency rule for a retried append. No I/O, no store class.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from eventkeep.errors import ConcurrencyError, DuplicateEventIdError
from eventkeep.store.codec import PreparedEvent
from eventkeep.store.events import Event, NewEvent, RawEvent

__all__ = [
    "ANY",
    "NO_STREAM",
    "PAGE_SIZE",
    "POLL_INTERVALS",
    "STREAM_EXISTS",
    "AppendItem",
    "AppendResult",
    "Expected",
    "ExpectedVersion",
    "PreparedAppend",
    "Snapshot",
    "StorageCheck",
    "StoreStats",
    "StoredIdentity",
    "StreamAppend",
    "StreamInfo",
    "concurrency_error",
    "expected_matches",
    "replayed_result",
]


class StorageCheck(NamedTuple):
    """What a backend's check of its database's own structures did and found, in words."""

    checked: tuple[str, ...] = ()
    not_checked: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


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


def concurrency_error(batch: PreparedAppend, actual: int) -> ConcurrencyError:
    return ConcurrencyError(batch.stream_id, batch.expected, actual)
