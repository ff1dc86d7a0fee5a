"""The two abstract halves of every backend: ``EventStore`` and its ``Transaction``.

The public methods check input, encode events and enforce the rules that do not depend on the
database; a backend implements the small set of ``_``-prefixed primitives underneath, and decides
nothing about appends (see :mod:`eventkeep.store.planner`). Every backend therefore refuses the
same bad input with the same errors, and the contract suite (:mod:`eventkeep.testing`) is the
specification they all pass.

A store and its transactions refer to each other (a store opens transactions; a transaction
writes through its store), so both live in this one module.

A store transaction: appends, checkpoints and read-model SQL that commit together, or not at all.

::

    with store.transaction() as tx:
        tx.execute("UPDATE balances SET cents = cents + ? WHERE account = ?", (500, "alice"))
        tx.append("audit-alice", [BalanceChecked()])
        tx.save_checkpoint("balances", 42, expected=41)

This is what makes projections exactly-once: the read-model change and the checkpoint move in
one transaction, and ``save_checkpoint`` is a compare-and-set, so a second consumer (a zombie
runner, say) that processed the same events finds the checkpoint moved and is rolled back.

Every backend implements it: SQLite runs it in one ``BEGIN IMMEDIATE`` transaction; the memory
store holds its lock for the duration and undoes everything on rollback; PostgreSQL runs one
database transaction. ``execute`` and ``connection`` (SQL on the store's own database) exist on
the SQL backends only; placeholders are ``?`` on every backend.
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Self, cast

import msgspec

from eventkeep.errors import (
    CheckpointConflictError,
    ConfigurationError,
    ProjectionFailedError,
    ValidationError,
)
from eventkeep.store.anchors import Anchor, AnchorKey, AnchorSource, check_anchor, make_anchor
from eventkeep.store.codec import DEFAULT_MAX_EVENT_BYTES, Codec
from eventkeep.store.dcb import (
    STREAMLESS_PREFIX,
    AppendCondition,
    Query,
    QueryResult,
    check_condition,
    check_query,
)
from eventkeep.store.erasure import Erasure
from eventkeep.store.events import Event, NewEvent, RawEvent, TypeRegistry, default_registry
from eventkeep.store.hashing import ChainRow, VerifyReport
from eventkeep.store.importing import ImportPlan, ImportReport
from eventkeep.store.lifecycle_store import LifecycleMixin
from eventkeep.store.recorded import RecordedEvent
from eventkeep.store.shredding import KeyStore
from eventkeep.store.transfer import export_events, import_events
from eventkeep.store.types import (
    ANY,
    NO_STREAM,
    PAGE_SIZE,
    POLL_INTERVALS,
    AppendItem,
    AppendResult,
    Expected,
    ExpectedVersion,
    PreparedAppend,
    Snapshot,
    StorageCheck,
    StoreStats,
    StreamAppend,
    StreamInfo,
)
from eventkeep.store.validation import (
    MAX_SCHEMA_VERSION,
    check_count,
    check_flag,
    check_name,
    check_optional_count,
    check_seconds,
    check_stream_id,
    check_text,
)
from eventkeep.telemetry import span

__all__ = ["EventStore", "Transaction", "Writer", "projection_reached"]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _check_expected(value: Any) -> Expected:
    if isinstance(value, ExpectedVersion):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return check_count(value, what="expected_version")
    raise ValidationError(
        "expected_version must be ANY, NO_STREAM, STREAM_EXISTS or an int >= 0 "
        f"(the stream's version before the append), got {value!r}"
    )


class EventStore(LifecycleMixin, Erasure, abc.ABC):
    """An append-only event store: streams of events, and one global log across them."""

    url: str

    def __init__(
        self,
        *,
        registry: TypeRegistry | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        key_store: KeyStore | None = None,
    ) -> None:
        check_count(max_event_bytes, what="max_event_bytes", minimum=1)
        if registry is not None and not isinstance(registry, TypeRegistry):
            raise ConfigurationError(f"registry must be a TypeRegistry, got {registry!r:.80}")
        self.registry = registry if registry is not None else default_registry
        self.codec = Codec(self.registry, max_event_bytes=max_event_bytes)
        self._last_clock = 0
        self._appended = threading.Condition()
        self._append_count = 0
        self._open_tx = threading.local()  # .tx: the transaction open on this thread, if any
        self.archive_dir = None  # where lifecycle operations write archives (docs/lifecycle.md)
        self._key_store = key_store
        self._append_hooks: list[Callable[[], object]] = []

    # -- writing ------------------------------------------------------------------------------

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
        if len(set(streams)) != len(streams):
            raise ValidationError("append_many takes each stream at most once")
        for stream_id in streams:
            if stream_id.startswith(STREAMLESS_PREFIX):
                raise ValidationError(
                    f"stream ids starting with {STREAMLESS_PREFIX!r} are reserved for "
                    f"append_events (one stream per append), got {stream_id!r}"
                )
        ids = [ev.event_id for b in batches for ev in b.events]
        if len(set(ids)) != len(ids):
            raise ValidationError("the same event id appears twice in one append")
        return batches

    # -- transactions and waiting -------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction for appends, checkpoints and read-model SQL: all commit, or none.

        Leaving the block with an exception rolls everything back. See
        :class:`eventkeep.store.base.Transaction`. One transaction per thread at a time: store
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
        if timeout is not None:
            timeout = check_seconds(timeout, what="timeout (or None)")
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
        for hook in self._append_hooks:
            hook()

    def on_append(self, hook: Callable[[], object]) -> None:
        """Call ``hook()`` (on any thread; it must be quick and must not raise) whenever new
        events may be in the log: after each append through this store object and, on a
        backend that hears of other processes' appends (PostgreSQL's LISTEN), when one is
        announced. The asyncio API wakes its waiting tasks with it."""
        self._append_hooks.append(hook)

    @property
    def poll_interval(self) -> float:
        """The longest pause between two looks at the head while waiting for events: appends
        that no hook announces (another process's, on SQLite) are seen within it."""
        return POLL_INTERVALS[1]

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
        return self._stream_reader(stream_id, low, high, backwards, remaining, archived)

    def _stream_reader(
        self,
        stream_id: str,
        low: int,
        high: int | None,
        backwards: bool,
        remaining: int | None,
        archived: bool,
    ) -> Iterator[RecordedEvent]:
        # Nothing is read before the first next(): the arguments are checked by read_stream
        # at once, but the store (a deleted stream's tombstone included) only when iterated,
        # so that eventkeep.aio can check them on the event loop and read on a store thread.
        low = self._lifecycle_low(stream_id, low, archived)
        if archived:
            yield from self._archived_stream(stream_id, low, high, backwards, remaining)
        else:
            yield from self._paged_stream(stream_id, low, high, backwards, remaining)

    def _paged_stream(
        self, stream_id: str, low: int, high: int | None, backwards: bool, remaining: int | None
    ) -> Iterator[RecordedEvent]:
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            with span("eventkeep.read", stream_id=stream_id):
                page = self._with_personal(
                    self._read_stream_page(stream_id, low, high, backwards, size)
                )
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

    def verify(
        self,
        *,
        deep: bool = True,
        anchor: Anchor | None = None,
        key: AnchorKey | None = None,
        trusted: Anchor | None = None,
        progress: Callable[[int, int], object] | None = None,
    ) -> VerifyReport:
        """Check the stored history; the report says what was checked and what was found.

        Always: every stream's hash chain (the first broken link per stream is reported), every
        stream head against its chain's last event, and that positions increase with versions
        within each stream. ``deep`` (the default) also checks the database's own structures:
        ``PRAGMA integrity_check`` on SQLite, amcheck's ``bt_index_check`` on PostgreSQL when
        the extension is installed (else the report lists it under ``not_checked``).

        ``anchor`` (with the ``key`` it was signed with; an Ed25519 public key suffices) also
        proves that the store still holds exactly the history it states up to its position: a
        recomputed chain, a deleted or forged event, a deleted stream, a moved head, reordered
        positions, a truncated or replaced database. ``trusted``: an earlier anchor of the same
        history, already checked, from which to start. An anchor that is malformed or not
        signed by ``key`` raises :class:`~eventkeep.errors.AnchorError`. See docs/security.md.

        ``progress(checked, total)`` is called as the chains are walked (every few thousand
        events, and once at the end with ``checked == report.events_checked``), on the thread
        that runs verify: ``total`` is the log's head position when verify began, an upper
        bound of the events to check (removed events and concurrent appends make it inexact).
        """
        if progress is not None and not callable(progress):
            raise ValidationError(f"progress must be callable, got {type(progress).__name__}")
        if anchor is not None and key is None:
            raise ConfigurationError("verify(anchor=...) needs the key the anchor was signed with")
        if trusted is not None and anchor is None:
            raise ConfigurationError("verify(trusted=...) checks an anchor: give anchor= too")
        if progress is None:
            report = self._verify()
        else:
            total = self.head_position()
            report = self._verify(lambda done: progress(done, max(done, total)))
        checked = [
            f"the hash chains of {_count(report.streams_checked, 'stream')} "
            f"({_count(report.events_checked, 'event')})",
            "every stream head against its chain's last event",
            "positions increase with versions within each stream",
        ]
        storage = (
            self._check_storage()
            if deep
            else StorageCheck(
                not_checked=("the database's own structures (skipped: not a deep check)",)
            )
        )
        lifecycle = self._check_lifecycle()
        checked.extend(storage.checked + lifecycle.checked)
        problems = list(storage.problems + lifecycle.problems)
        not_checked = list(storage.not_checked + lifecycle.not_checked)
        if anchor is not None and key is not None:
            with self._anchor_view() as (source, missing):
                what, found = check_anchor(source, anchor, key, trusted)
            if missing and found:
                # Removed events the archives could not give back: the anchor cannot be
                # checked over them, and the log says precisely what they were.
                not_checked.append(f"{what}: " + "; ".join(missing))
            else:
                checked.append(
                    what
                    + (
                        " (removed events read back from their archives)"
                        if self._removals(None)
                        else ""
                    )
                )
                problems.extend(found)
        else:
            not_checked.append(
                "the history as a whole (no anchor given): without one, a recomputed chain, a "
                "deleted stream, a cut tail with its head moved back, reordered streams or a "
                "replaced database cannot be told from a genuine history"
            )
        return report._replace(
            problems=tuple(problems), checked=tuple(checked), not_checked=tuple(not_checked)
        )

    def anchor(
        self,
        key: AnchorKey,
        *,
        previous: Anchor | None = None,
        publish: Callable[[Anchor], object] | None = None,
    ) -> Anchor:
        """A signed statement of the whole history up to the log's head position: keep it
        where the database's administrator cannot rewrite it, and check the store against it
        with ``verify(anchor=..., key=...)``. See :mod:`eventkeep.store.anchors`.

        ``previous``: an earlier anchor of this store (signed with ``key``) to extend: only the
        events after it are digested (the ones before are taken on its word; verify checks
        them). ``publish``: called with the new anchor before it is returned (write it to a
        bucket, a transparency log, another machine).
        """
        if not isinstance(key, AnchorKey):
            raise ValidationError(f"key must be an AnchorKey (see load_key), got {key!r:.80}")
        with self._anchor_source() as source:
            made = make_anchor(source, key, previous)
        if publish is not None:
            publish(made)
        return made

    # -- moving history between stores (see eventkeep.moving) ----------------------------------

    def export(
        self, *, after: int | None = None, stream_prefix: str | None = None
    ) -> Iterator[ChainRow]:
        """The stored events in log order after position ``after``, exactly as stored (ids,
        versions, positions, ``recorded_at``, data and metadata bytes, tags, hashes), for
        :meth:`import_` into another store. See :func:`eventkeep.store.transfer.export_events`."""
        return export_events(self, after=after, stream_prefix=stream_prefix)

    def import_(self, rows: Iterable[ChainRow], *, batch_size: int = 1000) -> ImportReport:
        """Write events exported from a store (:meth:`export`) as they are: same ids, versions,
        times, bytes and hashes, at their positions when this store has not given them yet
        (else numbered after its head, in the order given). Every hash is checked
        against its chain first; events already here (same id and hash) are skipped. See
        :func:`eventkeep.store.transfer.import_events`."""
        return import_events(self, rows, batch_size=batch_size)

    # -- projections' bookkeeping, for status views ---------------------------------------------

    def wait_for_projection(self, name: str, position: int, timeout: float | None = None) -> bool:
        """Block until projection ``name`` has handled the log up to ``position`` (read your
        writes: pass the position an append returned, then query the read model).

        True once its checkpoint is at ``position`` or beyond (at once if it already is);
        False after ``timeout`` seconds (None: as long as it takes); a projection that never
        ran is waited for. Raises ``ProjectionFailedError`` as soon as the projection is failed
        before ``position`` rather than waiting out the timeout. During a blue/green rebuild
        the live checkpoint stands still until the swap. Polls without locks a runner needs,
        every few milliseconds at first, then every 50 ms.
        """
        check_count(position, what="position")
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = POLL_INTERVALS[0]
        while True:
            if projection_reached(name, position, *self.projection_state()):
                return True
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            wait = pause if deadline is None else min(pause, deadline - now)
            time.sleep(max(0.0, wait))
            pause = min(pause * 2, 0.05)

    def projection_state(self) -> tuple[list[tuple[str, bytes]], dict[str, int]]:
        """Every projection record (name and opaque bytes, sorted by name) and every checkpoint
        (name to position), as one consistent view, for status displays. Backends read it
        without taking locks that runners need; this default reads it in a transaction."""
        with self.transaction() as tx:
            return tx.records(), tx.checkpoints()

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

    def close(self) -> None:
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
    def _append(
        self, batches: list[PreparedAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        """Write all batches in one transaction, checking expected versions, idempotency and
        the condition (inside the section that serializes appends)."""

    @abc.abstractmethod
    def _read_query_page(self, query: Query, after: int, limit: int) -> list[RecordedEvent]:
        """Up to ``limit`` events matching ``query`` after position ``after``, in order."""

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
    def _verify(self, progress: Callable[[int], object] | None = None) -> VerifyReport: ...

    def _check_storage(self) -> StorageCheck:
        """Check the database's own structures (files, pages, indexes)."""
        return StorageCheck(not_checked=("the database's own structures (this store has none)",))

    @abc.abstractmethod
    def _anchor_source(self) -> contextlib.AbstractContextManager[AnchorSource]:
        """Rows for anchors, all read from one snapshot."""

    def _export_page(self, after: int, limit: int, prefix: str | None) -> list[ChainRow]:
        """Up to ``limit`` stored events after position ``after`` (of streams starting with
        ``prefix``), in log order, as stored, hashes included."""
        raise ConfigurationError(f"{type(self).__name__} cannot export its events")

    def _import_rows(
        self, rows: list[ChainRow], removed_floor: int = 0, ahead: ImportPlan | None = None
    ) -> int:
        """Write one batch of exported events in one transaction that appends cannot
        interleave with, as :func:`eventkeep.store.importing.plan_import` decides (nothing
        when it raises); returns how many were written (the others were there already).
        ``removed_floor``: the last position removed by an operation the import does not
        carry (:class:`~eventkeep.store.importing.Numbering`). ``ahead``: the batch planned
        ahead, used if it holds (:func:`~eventkeep.store.importing.choose_plan`)."""
        raise ConfigurationError(f"{type(self).__name__} cannot import events")

    def _last_event_position(self) -> int:
        """The position of the last stored event (0: none), below any removed ones."""
        raise ConfigurationError(f"{type(self).__name__} cannot import events")

    @abc.abstractmethod
    def _save_snapshot(self, snapshot: Snapshot) -> None: ...

    @abc.abstractmethod
    def _load_snapshot(self, stream_id: str, max_version: int) -> Snapshot | None: ...

    @abc.abstractmethod
    def _delete_snapshots(self, prefix: str) -> int: ...


class Transaction(abc.ABC):
    """One open transaction of a store; use it only inside its ``with`` block, on its thread.

    It offers the store's writer interface (appends, reads, stream versions, snapshots) inside
    the transaction, so a ``Repository(tx, Account)`` loads and saves in it: reads see the
    transaction's own writes, and everything commits or rolls back together.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.appended = False
        self.closed = False
        self._thread = threading.get_ident()

    # -- the store's writer interface, inside this transaction ---------------------------------

    @property
    def codec(self) -> Codec:
        return self.store.codec

    @property
    def registry(self) -> TypeRegistry:
        return self.store.registry

    def _joined(self) -> EventStore:
        """The store: on this thread it joins this transaction (``EventStore.transaction``)."""
        self._check_open()
        return self.store

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
        """Like ``EventStore.read_stream``, seeing this transaction's writes."""
        return self._joined().read_stream(
            stream_id,
            from_version,
            to_version,
            backwards=backwards,
            limit=limit,
            archived=archived,
        )

    def read_all(
        self,
        after: int | None = None,
        limit: int | None = None,
        *,
        types: Iterable[str | type[Event]] | None = None,
        stream_prefix: str | None = None,
    ) -> Iterator[RecordedEvent]:
        """Like ``EventStore.read_all``, seeing this transaction's writes."""
        return self._joined().read_all(after, limit, types=types, stream_prefix=stream_prefix)

    def read(
        self, query: Query, *, after: int | None = None, limit: int | None = None
    ) -> QueryResult:
        """Like ``EventStore.read``, seeing this transaction's writes."""
        return self._joined().read(query, after=after, limit=limit)

    def stream_version(self, stream_id: str) -> int:
        return self._joined().stream_version(stream_id)

    def list_streams(self, prefix: str = "", *, limit: int | None = None) -> list[StreamInfo]:
        return self._joined().list_streams(prefix, limit=limit)

    def head_position(self) -> int:
        return self._joined().head_position()

    def save_snapshot(
        self, stream_id: str, version: int, state_type: str, schema_version: int, data: bytes
    ) -> None:
        """Like ``EventStore.save_snapshot``; it commits or rolls back with this transaction."""
        self._joined().save_snapshot(stream_id, version, state_type, schema_version, data)

    def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        return self._joined().load_snapshot(stream_id, max_version)

    def delete_snapshots(self, stream_prefix: str = "") -> int:
        return self._joined().delete_snapshots(stream_prefix)

    # -- appends ------------------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        events: Iterable[AppendItem],
        expected_version: Expected | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> AppendResult:
        """Like ``EventStore.append``, inside this transaction (``None`` means ``ANY``)."""
        items = cast("Sequence[AppendItem]", events)
        expected = ANY if expected_version is None else expected_version
        appends = [StreamAppend(stream_id, items, expected, metadata)]
        return self.append_many(appends, condition=condition)[0]

    def append_many(
        self, appends: Iterable[StreamAppend], *, condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        """Like ``EventStore.append_many``, inside this transaction.

        A ``ConcurrencyError`` (an ``AppendConditionError`` too) undoes this call's appends
        only; what the transaction did before stays (and commits, unless the error leaves the
        ``with`` block). The condition sees the transaction's own earlier appends.
        """
        self._check_open()
        checked = check_condition(condition)
        batches = self.store._prepare_many(appends)
        results = self.store._append_sealed(self._append, batches, checked)
        self.appended = True
        return results

    def append_events(
        self,
        events: Iterable[AppendItem],
        *,
        condition: AppendCondition | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        """Like ``EventStore.append_events``, inside this transaction."""
        self._check_open()
        checked = check_condition(condition)
        batches = [self.store._prepare_streamless(events, metadata)]
        results = self.store._append_sealed(self._append, batches, checked)
        self.appended = True
        return results[0]

    # -- checkpoints --------------------------------------------------------------------------

    def checkpoint(self, name: str) -> int | None:
        """The position saved under ``name``, or None if there is none."""
        self._check_open()
        return self._checkpoint(check_name(name, what="checkpoint name"))

    def save_checkpoint(self, name: str, position: int, *, expected: int | None) -> None:
        """Move checkpoint ``name`` to ``position`` if it is at ``expected`` (None: absent).

        Raises ``CheckpointConflictError`` otherwise: someone else moved it. Leaving the
        ``with`` block with that error rolls back everything this transaction did.
        """
        self._check_open()
        name = check_name(name, what="checkpoint name")
        check_count(position, what="position")
        if expected is not None:
            check_count(expected, what="expected")
        if not self._save_checkpoint(name, position, expected):
            raise CheckpointConflictError(
                f"checkpoint {name!r} is not at {expected!r} any more: another consumer moved it"
            )

    def delete_checkpoint(self, name: str) -> None:
        self._check_open()
        self._delete_checkpoint(check_name(name, what="checkpoint name"))

    def checkpoints(self) -> dict[str, int]:
        """Every checkpoint: name to position."""
        self._check_open()
        return self._checkpoints()

    # -- projection records (status and leases, see eventkeep.projections) ---------------------

    def record(self, name: str) -> bytes | None:
        """The projection record stored under ``name`` (opaque bytes), locked for this tx."""
        self._check_open()
        return self._record(check_name(name, what="record name"))

    def save_record(self, name: str, data: bytes) -> None:
        self._check_open()
        name = check_name(name, what="record name")
        if not isinstance(data, bytes):
            raise ValidationError(f"record data must be bytes, got {type(data).__name__}")
        self._save_record(name, data)

    def delete_record(self, name: str) -> None:
        self._check_open()
        self._delete_record(check_name(name, what="record name"))

    def records(self) -> list[tuple[str, bytes]]:
        """Every projection record, sorted by name."""
        self._check_open()
        return self._records()

    # -- SQL on the store's own database ------------------------------------------------------

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one SQL statement in this transaction (``?`` placeholders); returns its rows."""
        self._check_open()
        if not isinstance(statement, str):
            raise ValidationError(f"statement must be a str, got {type(statement).__name__}")
        if isinstance(params, str | bytes | Mapping):
            raise ValidationError(
                f"params must be a sequence of values, got {type(params).__name__}: {params!r:.80}"
            )
        try:
            values = tuple(params)
        except TypeError:
            raise ValidationError(
                f"params must be a sequence of values, got {type(params).__name__}"
            ) from None
        return self._execute(statement, values)

    @property
    def connection(self) -> Any:
        """The DB-API connection the transaction runs on: never commit or roll back on it."""
        self._check_open()
        return self._connection()

    @property
    def supports_sql(self) -> bool:
        return False

    def _execute(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        raise ConfigurationError(f"{self.store.url} has no SQL database: execute() needs one")

    def _connection(self) -> Any:
        raise ConfigurationError(f"{self.store.url} has no SQL database: no connection")

    def _check_open(self) -> None:
        if self.closed:
            raise ValidationError("this transaction has ended; open a new one")
        if threading.get_ident() != self._thread:
            raise ValidationError(
                "a transaction is used only on the thread that opened it; open one per thread"
            )

    # -- backend primitives -------------------------------------------------------------------

    @abc.abstractmethod
    def _append(
        self, batches: list[PreparedAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]: ...

    @abc.abstractmethod
    def _checkpoint(self, name: str) -> int | None: ...

    @abc.abstractmethod
    def _save_checkpoint(self, name: str, position: int, expected: int | None) -> bool:
        """Compare-and-set; False when the checkpoint was not at ``expected``."""

    @abc.abstractmethod
    def _delete_checkpoint(self, name: str) -> None: ...

    @abc.abstractmethod
    def _checkpoints(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def _record(self, name: str) -> bytes | None: ...

    @abc.abstractmethod
    def _save_record(self, name: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def _delete_record(self, name: str) -> None: ...

    @abc.abstractmethod
    def _records(self) -> list[tuple[str, bytes]]: ...


def projection_reached(
    name: str, position: int, records: list[tuple[str, bytes]], checkpoints: dict[str, int]
) -> bool:
    """Whether projection ``name`` has handled the log up to ``position``, by its records and
    checkpoints (``projection_state``); raises ``ProjectionFailedError`` when it is failed
    before ``position``. What every ``wait_for_projection`` (sync and async) polls."""
    if checkpoints.get(name, 0) >= position:
        return True
    for record_name, data in records:
        if record_name != name:
            continue
        record = msgspec.json.decode(data)
        if isinstance(record, dict) and record.get("state") == "failed":
            failing = record.get("failing_position")
            error = str(record.get("error") or record.get("last_error") or "")
            raise ProjectionFailedError(
                f"projection {name!r} is failed at position {failing} ({error}), before "
                f"position {position}; see `eventkeep projections status {name}`",
                name,
                failing if isinstance(failing, int) else None,
                error,
            )
    return False


Writer = EventStore | Transaction
"""What the domain layer (``Repository``, deciders, snapshots) writes through: a store, or an
open transaction of one. Both offer append, append_many, the reads, stream_version and
snapshots with the same signatures; inside a transaction everything commits together."""
