"""Reading a store: a stream, the global log, a DCB query, paged through the backend's page
primitives (each page checked for personal data's keys); stream versions, stream listings,
the head and the counts. Mixed into :class:`~eventkeep.store.base.EventStore`; a backend
implements the primitives at the end.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from eventkeep.errors import ValidationError
from eventkeep.store.dcb import Query, QueryResult, check_query
from eventkeep.store.events import Event
from eventkeep.store.recorded import RecordedEvent
from eventkeep.store.types import PAGE_SIZE, StoreStats, StreamInfo
from eventkeep.store.validation import (
    check_count,
    check_flag,
    check_optional_count,
    check_stream_id,
    check_text,
)
from eventkeep.telemetry import span

__all__ = ["Reading"]


class Reading(abc.ABC):
    """Mixed into ``EventStore``: everything that reads events and the log's shape."""

    if TYPE_CHECKING:  # LifecycleMixin's and Erasure's

        def _deletion_low(self, stream_id: str, low: int) -> int | None: ...

        def _archived_stream(
            self, stream_id: str, low: int, high: int | None, backwards: bool, remaining: int | None
        ) -> Iterator[RecordedEvent]: ...

        def _with_personal(self, page: Sequence[RecordedEvent]) -> Sequence[RecordedEvent]: ...

    def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        backwards: bool = False,
        limit: int | None = None,
        archived: bool = False,
    ) -> Iterator[RecordedEvent]:
        """The stream's events with ``from_version <= version <= to_version``.

        Forwards by default; ``backwards=True`` yields the same range from the end, so
        ``read_stream(s, backwards=True, limit=1)`` is the stream's last event.

        A deleted stream raises ``StreamDeletedError`` (see ``delete_stream``). Events removed
        by retention, truncation or an archive are not read (the stream starts at its first
        remaining version), unless ``archived``: then they are read back from their archive
        files (each checked against the operations log), and a deleted stream's history too.
        """
        stream_id = check_stream_id(stream_id)
        low = check_count(from_version, what="from_version", minimum=1)
        high = check_optional_count(to_version, what="to_version", minimum=0)
        remaining = check_optional_count(limit, what="limit")
        backwards = check_flag(backwards, what="backwards")
        archived = check_flag(archived, what="archived")
        # Nothing is read before the first next(): the arguments are checked here at once, but
        # the store (a deleted stream's tombstone included) only when iterated, so that
        # eventkeep.aio can check them on the event loop and read on a store thread. Both are
        # generators; the live one is returned as it is (no generator around it per event).
        if archived:
            return self._archived_reader(stream_id, low, high, backwards, remaining)
        return self._paged_stream(stream_id, low, high, backwards, remaining)

    def _archived_reader(
        self, stream_id: str, low: int, high: int | None, backwards: bool, remaining: int | None
    ) -> Iterator[RecordedEvent]:
        yield from self._archived_stream(stream_id, low, high, backwards, remaining)

    def _paged_stream(
        self,
        stream_id: str,
        low: int,
        high: int | None,
        backwards: bool,
        remaining: int | None,
        live: bool = True,
    ) -> Iterator[RecordedEvent]:
        # The first page is read ``live``: the backend returns nothing if the stream was ever
        # deleted, so a stream read is one statement. Only an empty first page looks for a
        # tombstone (raising for a deleted stream, starting a revived one after its deletion).
        # ``live=False``: whatever is stored, tombstone or not (archived reads).
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            with span("eventkeep.read", stream_id=stream_id):
                page = self._with_personal(
                    self._read_stream_page(stream_id, low, high, backwards, size, live)
                )
            if live:
                live = False
                if not page:
                    after_deletion = self._deletion_low(stream_id, low)
                    if after_deletion is None:
                        return  # never deleted: the stream holds nothing in the range
                    low = after_deletion
                    continue
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
            with span("eventkeep.read", after=position):
                page = self._with_personal(self._read_all_page(position, size, type_names, prefix))
            yield from page
            if len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            position = page[-1].position

    def read(
        self, query: Query, *, after: int | None = None, limit: int | None = None
    ) -> QueryResult:
        """The events matching ``query`` after position ``after``, in log order (at most
        ``limit``), and ``head``: the position to pass as the ``after`` of an
        ``AppendCondition`` on the same query. Every matching event not in the result is
        after ``head`` (when ``limit`` cut the result short, ``head`` is its last event)."""
        query = check_query(query)
        position = check_count(0 if after is None else after, what="after")
        remaining = check_optional_count(limit, what="limit")
        # The head first: an event committed after it is numbered after it (positions follow
        # commit order on every backend), so it is after ``head`` if the pages miss it.
        start = self._head_position()
        events = list(self._paged_query(query, position, remaining))
        if remaining is not None and len(events) >= remaining:
            head = events[-1].position if events else position
        else:
            head = max(start, position, events[-1].position if events else 0)
        return QueryResult(events, head)

    def _paged_query(
        self, query: Query, position: int, remaining: int | None
    ) -> Iterator[RecordedEvent]:
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            with span("eventkeep.read", after=position, query=True):
                page = self._with_personal(self._read_query_page(query, position, size))
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
        if isinstance(types, bytes | Mapping):
            raise ValidationError(f"types takes type names or Event classes, got {types!r:.80}")
        try:
            listed = list(types)
        except TypeError:
            raise ValidationError(
                "types takes a list of type names or Event classes, got "
                f"{type(types).__name__}: {types!r:.80}"
            ) from None
        names: list[str] = []
        for item in listed:
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

    # -- backend primitives -------------------------------------------------------------------

    @abc.abstractmethod
    def _read_query_page(self, query: Query, after: int, limit: int) -> list[RecordedEvent]:
        """Up to ``limit`` events matching ``query`` after position ``after``, in order."""

    @abc.abstractmethod
    def _read_stream_page(
        self,
        stream_id: str,
        low: int,
        high: int | None,
        backwards: bool,
        limit: int,
        live: bool = False,
    ) -> list[RecordedEvent]:
        """Up to ``limit`` of the stream's events from version ``low`` up to ``high`` (None:
        the end), in order or ``backwards``; ``live``: none at all if the stream has a
        tombstone (``StreamMeta.deletion``), in the same statement."""

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
