"""Appending to a store: ``append``, ``append_many`` and ``append_events`` check their input
and encode the events (a :class:`~eventkeep.store.types.PreparedAppend` per stream); the
backend's ``_append`` writes them as :mod:`eventkeep.store.planner` decides. Mixed into
:class:`~eventkeep.store.base.EventStore`.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from eventkeep.errors import ValidationError
from eventkeep.store.dcb import STREAMLESS_PREFIX, AppendCondition, check_condition
from eventkeep.store.events import Event, NewEvent, RawEvent
from eventkeep.store.types import (
    ANY,
    NO_STREAM,
    AppendItem,
    AppendResult,
    Expected,
    ExpectedVersion,
    PreparedAppend,
    StreamAppend,
)
from eventkeep.store.validation import check_count, check_stream_id
from eventkeep.telemetry import span

if TYPE_CHECKING:
    from eventkeep.store.codec import Codec
    from eventkeep.store.shredding import Shredder

__all__ = ["Appending"]


def _check_expected(value: Any) -> Expected:
    if isinstance(value, ExpectedVersion):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return check_count(value, what="expected_version")
    raise ValidationError(
        "expected_version must be ANY, NO_STREAM, STREAM_EXISTS or an int >= 0 "
        f"(the stream's version before the append), got {value!r}"
    )


class _Joined(Protocol):
    """What an append on a thread with a transaction open hands over to: the transaction."""

    def append_many(
        self, appends: Iterable[StreamAppend], *, condition: AppendCondition | None = None
    ) -> list[AppendResult]: ...

    def append_events(
        self,
        events: Iterable[AppendItem],
        *,
        condition: AppendCondition | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AppendResult: ...


class Appending(abc.ABC):
    """Mixed into ``EventStore``: the three ways to append, and their checks."""

    codec: Codec

    if TYPE_CHECKING:  # EventStore's and Erasure's

        def joined_transaction(self) -> _Joined | None: ...

        def _notify_appended(self) -> None: ...

        def _shredder(self) -> Shredder: ...

        def _append_sealed(
            self,
            append: Callable[[list[PreparedAppend], AppendCondition | None], list[AppendResult]],
            batches: list[PreparedAppend],
            condition: AppendCondition | None,
        ) -> list[AppendResult]: ...

    def append(
        self,
        stream_id: str,
        events: Iterable[AppendItem],
        expected_version: Expected = ANY,
        metadata: Mapping[str, Any] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> AppendResult:
        """Append events to one stream, atomically: all of them or none.

        ``expected_version`` is the stream's version before the append (0 for a new stream), or
        ``ANY``, ``NO_STREAM`` or ``STREAM_EXISTS``; a mismatch raises ``ConcurrencyError`` and
        writes nothing. ``condition`` (an :class:`~eventkeep.store.dcb.AppendCondition`) fails
        the append with ``AppendConditionError`` if an event matching its query was appended
        after its position; with an expected version too, both must hold. Re-sending an
        append whose event ids are already stored returns the original result and writes
        nothing.
        """
        # Passed on as given: _prepare refuses a single event before it lists the events.
        items = cast("Sequence[AppendItem]", events)
        appends = [StreamAppend(stream_id, items, expected_version, metadata)]
        return self.append_many(appends, condition=condition)[0]

    def append_many(
        self, appends: Iterable[StreamAppend], *, condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        """Append to several streams in one transaction, each with its own expected version,
        and all under one ``condition`` (see ``append``).

        Called on a thread that has a transaction of this store open, it joins that
        transaction (as ``tx.append_many``): its events commit or roll back with it.
        """
        joined = self.joined_transaction()
        if joined is not None:
            return joined.append_many(appends, condition=condition)
        checked = check_condition(condition)
        batches = self._prepare_many(appends)
        with span("eventkeep.append", streams=len(batches)):
            results = self._append_sealed(self._append, batches, checked)
        self._notify_appended()
        return results

    def append_events(
        self,
        events: Iterable[AppendItem],
        *,
        condition: AppendCondition | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        """Append events that belong to no stream of the caller's choosing (their tags say
        what they are about), atomically, under ``condition`` (see ``append``).

        They go to a new stream of their own, ``$dcb:<the first event's id>``, expected not to
        exist: each such append is one hash-chained stream that ``verify`` checks like any
        other, and re-sending it with the same event ids returns the original result.
        """
        joined = self.joined_transaction()
        if joined is not None:
            return joined.append_events(events, condition=condition, metadata=metadata)
        checked = check_condition(condition)
        batches = [self._prepare_streamless(events, metadata)]
        with span("eventkeep.append", streams=1):
            results = self._append_sealed(self._append, batches, checked)
        self._notify_appended()
        return results[0]

    def _prepare_streamless(
        self, events: Iterable[AppendItem], metadata: Mapping[str, Any] | None
    ) -> PreparedAppend:
        items = cast("Sequence[AppendItem]", events)
        self._shredder().begin_append()
        batch = self._prepare(StreamAppend(STREAMLESS_PREFIX + "new", items, NO_STREAM, metadata))
        first = batch.events[0].event_id
        return batch._replace(stream_id=f"{STREAMLESS_PREFIX}{uuid.UUID(bytes=first)}")

    def _prepare_many(self, appends: Iterable[StreamAppend]) -> list[PreparedAppend]:
        self._shredder().begin_append()  # the codec encrypts personal fields through it
        if isinstance(appends, StreamAppend | str | bytes | Mapping):
            raise ValidationError(
                f"append_many takes a list of StreamAppend, got a single {type(appends).__name__}"
            )
        try:
            items = iter(appends)
        except TypeError:
            raise ValidationError(
                f"append_many takes a list of StreamAppend, got {type(appends).__name__}: "
                f"{appends!r:.80}"
            ) from None
        batches = [self._prepare(item) for item in items]
        if not batches:
            raise ValidationError("append_many needs at least one StreamAppend")
        streams = [b.stream_id for b in batches]
        if len(streams) > 1 and len(set(streams)) != len(streams):
            raise ValidationError("append_many takes each stream at most once")
        for stream_id in streams:
            if stream_id.startswith(STREAMLESS_PREFIX):
                raise ValidationError(
                    f"stream ids starting with {STREAMLESS_PREFIX!r} are reserved for "
                    f"append_events (one stream per append), got {stream_id!r}"
                )
        if len(batches) > 1 or len(batches[0].events) > 1:  # one event cannot repeat its id
            ids = [ev.event_id for b in batches for ev in b.events]
            if len(set(ids)) != len(ids):
                raise ValidationError("the same event id appears twice in one append")
        return batches

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

    # -- backend primitives -------------------------------------------------------------------

    @abc.abstractmethod
    def _append(
        self, batches: list[PreparedAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        """Write all batches in one transaction, checking expected versions, idempotency and
        the condition (inside the section that serializes appends)."""
