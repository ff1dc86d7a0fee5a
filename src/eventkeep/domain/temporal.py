"""Temporal queries: which version a stream was at, at a given time; and an audit trail.

``Repository.load(id, as_of=when)`` is ``load(id, at_version=version_at(...))``: the version is
found by a binary search over the stream's ``recorded_at`` times (a few single-event reads),
so the load itself takes the same path as ``at_version``, snapshots included (never one taken
after the requested version). It relies on the store's clock never running backwards within a
stream, which every eventkeep backend guarantees.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, NamedTuple, TypeVar

from eventkeep.errors import NotFoundError, ValidationError
from eventkeep.store import Writer
from eventkeep.store.events import Event, RawEvent
from eventkeep.store.recorded import RecordedEvent

__all__ = ["HistoryEntry", "version_at"]

T = TypeVar("T")


class HistoryEntry(NamedTuple, Generic[T]):
    """One step of an aggregate's history: the event at ``version`` and the state after it.

    ``state`` is an independent copy of the aggregate as it was right after the event.
    """

    version: int
    recorded_at: datetime
    event: Event | RawEvent
    state: T
    recorded: RecordedEvent


def version_at(store: Writer, stream_id: str, as_of: datetime) -> int:
    """The stream's version at ``as_of``: its last event recorded at or before that time.

    Raises ``NotFoundError`` when the stream does not exist or had no events yet at ``as_of``.
    """
    if not isinstance(as_of, datetime):
        raise ValidationError(f"as_of must be a datetime, got {type(as_of).__name__}")
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValidationError(
            f"as_of must be timezone-aware (e.g. datetime.now(UTC)), got the naive {as_of}"
        )
    head = store.stream_version(stream_id)
    if head == 0:
        raise NotFoundError(f"stream {stream_id!r} does not exist")
    low, high = 0, head  # versions <= low are at or before as_of; versions > high are after
    while low < high:
        middle = (low + high + 1) // 2
        if _recorded_at(store, stream_id, middle) <= as_of:
            low = middle
        else:
            high = middle - 1
    if low == 0:
        raise NotFoundError(
            f"stream {stream_id!r} had no events yet at {as_of.isoformat()} "
            f"(its first was recorded at {_recorded_at(store, stream_id, 1).isoformat()})"
        )
    return low


def _recorded_at(store: Writer, stream_id: str, version: int) -> datetime:
    for recorded in store.read_stream(stream_id, version, version):
        return recorded.recorded_at
    raise NotFoundError(f"stream {stream_id!r} has no version {version}")
