"""The in-memory backend: the reference implementation, and the executable specification.

Everything is kept in Python lists and dicts under one lock. Events are stored encoded, exactly
as a database backend would store them, so that serialization rules, size limits, idempotency
and the hash chain behave identically.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from eventkeep.errors import KeyConflictError, ValidationError
from eventkeep.store import (
    AppendResult,
    EventStore,
    PreparedAppend,
    Snapshot,
    StoredIdentity,
    StoreStats,
    StreamInfo,
)
from eventkeep.store.anchors import AnchorHead, AnchorRow, AnchorSource
from eventkeep.store.base import Transaction
from eventkeep.store.codec import DEFAULT_MAX_EVENT_BYTES
from eventkeep.store.dcb import AppendCondition, Query, QueryItem
from eventkeep.store.events import TypeRegistry
from eventkeep.store.hashing import ChainRow, StreamHead, VerifyReport, verify_chains
from eventkeep.store.importing import ImportPlan, Numbering, TargetHead, choose_plan
from eventkeep.store.lifecycle import (
    Operation,
    Removal,
    Selection,
    StreamMeta,
    chain_starts,
    removed_through,
)
from eventkeep.store.lifecycle_store import Prepare
from eventkeep.store.planner import Head, plan_append
from eventkeep.store.recorded import RecordedEvent, from_micros, recorded_from_row
from eventkeep.store.shredding import ForgottenSubject, KeyStore, MemoryKeyStore

__all__ = ["MemoryStore"]


class MemoryStore(EventStore):
    """An event store held in this process's memory; gone when the process ends."""

    _stores_keys_in_append = True  # see _store_new_keys

    def __init__(
        self,
        url: str = "memory://",
        *,
        registry: TypeRegistry | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        archive_dir: str | Path | None = None,
        key_store: KeyStore | None = None,
    ) -> None:
        super().__init__(registry=registry, max_event_bytes=max_event_bytes, key_store=key_store)
        # Archives are real files here too: lifecycle operations that remove events need an
        # archive_dir (there is no file to put them next to).
        self._set_archive_dir(archive_dir, None)
        self.url = url
        self._keys = MemoryKeyStore()
        self._forgotten: list[ForgottenSubject] = []
        self._lock = threading.RLock()
        # index = position - 1; None where a lifecycle operation removed the event
        self._log: list[ChainRow | None] = []
        self._streams: dict[str, list[int]] = {}  # stream id -> positions, index = version - 1
        self._ids: dict[bytes, int] = {}  # event id -> position
        # Tag and type -> positions, ascending: a query item walks one from a position on.
        self._by_tag: dict[str, list[int]] = {}
        self._by_type: dict[str, list[int]] = {}
        self._snapshots: dict[str, dict[int, Snapshot]] = {}
        self._checkpoints: dict[str, int] = {}
        self._records: dict[str, bytes] = {}
        self._meta: dict[str, StreamMeta] = {}
        self._operations_log: list[Operation] = []
        self._removed: list[Removal] = []

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Transaction]:
        # The lock is held throughout, so no other thread sees the transaction's writes before
        # it commits; on rollback they are undone.
        with self._lock:
            tx = MemoryTransaction(self)
            try:
                yield tx
            except BaseException:
                tx.undo()
                raise

    def _append(
        self, batches: list[PreparedAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        with self._lock:
            self._store_new_keys(batches)
            ids = self._ids
            stored = {
                ev.event_id: self._identity(ids[ev.event_id])
                for batch in batches
                for ev in batch.events
                if ev.event_id in ids
            }
            matched = None
            if condition is not None:
                matched = self._first_match(condition.fail_if_events_match, condition.after or 0)
            heads = self._heads(batches)
            plan = plan_append(batches, heads, stored, condition, matched)
            if plan.conflict is not None:
                raise plan.conflict
            # Every check passed and every row is built before any is stored, so nothing can
            # leave a partial append behind.
            first = len(self._log) + 1
            last = next((row for row in reversed(self._log) if row is not None), None)
            now = self._clock(max(plan.time_floor(), last.recorded_at_us if last else 0))
            staged = [
                ChainRow(row.stream_id, row.version, position, *row[2:])
                for position, row in enumerate(plan.rows(now), first)
            ]
            for row in staged:
                self._store(row)
            return plan.results(first)

    def _export_page(self, after: int, limit: int, prefix: str | None) -> list[ChainRow]:
        with self._lock:
            out: list[ChainRow] = []
            for row in itertools.islice(self._log, after, None):
                if row is not None and (prefix is None or row.stream_id.startswith(prefix)):
                    out.append(row)
                    if len(out) >= limit:
                        break
            return out

    def _import_rows(
        self, rows: list[ChainRow], removed_floor: int = 0, ahead: ImportPlan | None = None
    ) -> int:
        with self._lock:
            streams = {row.stream_id: row for row in rows}
            heads = {
                stream_id: TargetHead(head.version, head.last_hash)
                for stream_id, head in self._stream_heads(streams).items()
            }
            stored = {
                row.event_id: found
                for row in rows
                if (found := self._found(row.event_id)) is not None
            }
            last = self._last_event()
            numbering = Numbering(len(self._log), max(last.position if last else 0, removed_floor))
            planned = choose_plan(
                rows, heads, stored, last.recorded_at_us if last else 0, numbering, ahead
            )
            for row in planned:
                self._store(row)
            return len(planned)

    def _last_event(self) -> ChainRow | None:
        return next((row for row in reversed(self._log) if row is not None), None)

    def _last_event_position(self) -> int:
        with self._lock:
            last = self._last_event()
            return 0 if last is None else last.position

    def _found(self, event_id: bytes) -> ChainRow | None:
        position = self._ids.get(event_id)
        return None if position is None else self._log[position - 1]

    def _store(self, row: ChainRow) -> None:
        """Add ``row`` to the log at its position (above every stored event: the slots between
        stay empty, as removed events' do) and to its indexes."""
        log = self._log
        if row.position > len(log):
            log.extend([None] * (row.position - 1 - len(log)))
            log.append(row)
        else:  # a slot a carried removal reserved (see _carry_operation)
            assert log[row.position - 1] is None
            log[row.position - 1] = row
        self._streams.setdefault(row.stream_id, []).append(row.position)
        self._ids[row.event_id] = row.position
        self._by_type.setdefault(row.type, []).append(row.position)
        for tag in row.tags:
            self._by_tag.setdefault(tag, []).append(row.position)

    def _store_new_keys(self, batches: list[PreparedAppend]) -> None:
        made = {s: k for batch in batches for ev in batch.events for s, k in ev.keys}
        lost = [s for s, k in made.items() if self._keys.create_key(s, k) != k]
        if lost:
            raise KeyConflictError(lost)

    def _heads(self, batches: list[PreparedAppend]) -> dict[str, Head]:
        return self._stream_heads(batch.stream_id for batch in batches)

    def _stream_heads(self, stream_ids: Iterable[str]) -> dict[str, Head]:
        heads: dict[str, Head] = {}
        for stream_id in stream_ids:
            positions = self._streams.get(stream_id)
            if positions:
                last = self._log[positions[-1] - 1]
                if last is None:  # removed: the logged hash of the last removed event
                    gone = removed_through(self._removed)[stream_id]
                    heads[stream_id] = Head(len(positions), gone.last_hash, 0)
                else:
                    heads[stream_id] = Head(len(positions), last.hash, last.recorded_at_us)
        return heads

    def _identity(self, position: int) -> StoredIdentity:
        row = self._log[position - 1]
        assert row is not None  # removed events leave the id index
        return StoredIdentity(
            row.event_id, row.stream_id, row.version, row.position, row.type, row.data
        )

    def _read_stream_page(
        self,
        stream_id: str,
        low: int,
        high: int | None,
        backwards: bool,
        limit: int,
        live: bool = False,
    ) -> list[RecordedEvent]:
        with self._lock:
            if live:
                meta = self._meta.get(stream_id)
                if meta is not None and meta.deletion is not None:
                    return []
            positions = self._streams.get(stream_id, [])
            top = len(positions) if high is None else min(high, len(positions))
            if backwards:
                chosen = positions[max(low - 1, top - limit) : top][::-1]
            else:
                chosen = positions[low - 1 : min(top, low - 1 + limit)]
            rows = (self._log[p - 1] for p in chosen)
            return [recorded_from_row(row, self.codec) for row in rows if row is not None]

    def _read_all_page(
        self, after: int, limit: int, types: tuple[str, ...] | None, prefix: str | None
    ) -> list[RecordedEvent]:
        with self._lock:
            out: list[RecordedEvent] = []
            wanted = None if types is None else set(types)
            log = self._log
            for index in range(after, len(log)):
                row = log[index]
                if row is None:
                    continue
                if wanted is not None and row.type not in wanted:
                    continue
                if prefix is not None and not row.stream_id.startswith(prefix):
                    continue
                out.append(recorded_from_row(row, self.codec))
                if len(out) >= limit:
                    break
            return out

    def _matching(self, query: Query, after: int) -> Iterator[int]:
        """The positions of the events matching ``query`` after ``after``, in order: each item
        walks the positions of its first tag (or of each of its types) from ``after`` on."""
        if query.matches_all:
            live = self._log
            yield from (p for p in range(after + 1, len(live) + 1) if live[p - 1] is not None)
            return
        log = self._log
        walks: list[Iterator[int]] = []
        for item in query.items:
            if item.tags:
                candidates = [self._by_tag.get(item.tags[0], [])]
            else:
                candidates = [self._by_type.get(name, []) for name in item.types]
            walks.extend(_walk(log, positions, after, item) for positions in candidates)
        last = after
        for position in heapq.merge(*walks):
            if position > last:  # an event matching several items comes once
                last = position
                yield position

    def _first_match(self, query: Query, after: int) -> int | None:
        """The first position matching ``query`` after ``after`` (a condition's check): the
        least of each walk's first match, without merging the walks."""
        log = self._log
        if after >= len(log):
            return None
        if query.matches_all:
            return next(self._matching(query, after), None)
        first: int | None = None
        for item in query.items:
            if item.tags:
                candidates = [self._by_tag.get(item.tags[0], [])]
            else:
                candidates = [self._by_type.get(name, []) for name in item.types]
            for positions in candidates:
                found = next(_walk(log, positions, after, item), None)
                if found is not None and (first is None or found < first):
                    first = found
        return first

    def _read_query_page(self, query: Query, after: int, limit: int) -> list[RecordedEvent]:
        with self._lock:
            out: list[RecordedEvent] = []
            for position in self._matching(query, after):
                row = self._log[position - 1]
                assert row is not None  # _matching skips removed events
                out.append(recorded_from_row(row, self.codec))
                if len(out) >= limit:
                    break
            return out

    def _stream_version(self, stream_id: str) -> int:
        with self._lock:  # not while another thread's transaction is open
            return len(self._streams.get(stream_id, ()))

    def _list_streams(self, prefix: str, limit: int | None) -> list[StreamInfo]:
        with self._lock:
            names = sorted(s for s in self._streams if s.startswith(prefix))
            if limit is not None:
                names = names[:limit]
            return [StreamInfo(s, len(self._streams[s]), self._streams[s][-1]) for s in names]

    def _head_position(self) -> int:
        with self._lock:  # not while another thread's transaction is open
            return len(self._log)

    def _stats(self) -> StoreStats:
        with self._lock:
            types = Counter(row.type for row in self._log if row is not None)
            count = sum(types.values())
            return StoreStats(count, len(self._streams), len(self._log), dict(types))

    def _verify(self, progress: Callable[[int], object] | None = None) -> VerifyReport:
        with self._lock:
            rows = sorted(
                (row for row in self._log if row is not None),
                key=lambda row: (row.stream_id, row.version),
            )
            starts = chain_starts(self._removed)
            heads = {}
            for stream_id, kept in self._streams.items():
                last = self._log[kept[-1] - 1]
                digest = last.hash if last is not None else starts[stream_id].hash
                heads[stream_id] = StreamHead(len(kept), kept[-1], digest)
        return verify_chains(rows, heads, starts, progress)

    @contextlib.contextmanager
    def _anchor_source(self) -> Iterator[AnchorSource]:
        with self._lock:
            log = list(self._log)  # a snapshot: rows are immutable tuples
        yield _LogSource(log)

    def _save_snapshot(self, snapshot: Snapshot) -> None:
        with self._lock:
            versions = self._snapshots.setdefault(snapshot.stream_id, {})
            joined = self.joined_transaction()
            if isinstance(joined, MemoryTransaction):
                joined.replaced_snapshots.append(
                    (snapshot.stream_id, snapshot.version, versions.get(snapshot.version))
                )
            versions[snapshot.version] = snapshot

    def _load_snapshot(self, stream_id: str, max_version: int) -> Snapshot | None:
        with self._lock:
            versions = [v for v in self._snapshots.get(stream_id, {}) if v <= max_version]
            return self._snapshots[stream_id][max(versions)] if versions else None

    def _delete_snapshots(self, prefix: str) -> int:
        with self._lock:
            doomed = [s for s in self._snapshots if s.startswith(prefix)]
            joined = self.joined_transaction()
            if isinstance(joined, MemoryTransaction):
                joined.replaced_snapshots.extend(
                    (stream, version, snap)
                    for stream in doomed
                    for version, snap in self._snapshots[stream].items()
                )
            count = sum(len(self._snapshots.pop(s)) for s in doomed)
            return count

    # -- lifecycle (see eventkeep.store.lifecycle_store) ------------------------------------

    def _stream_meta(self, stream_id: str) -> StreamMeta | None:
        with self._lock:
            return self._meta.get(stream_id)

    def _stream_metas(self) -> list[tuple[str, StreamMeta]]:
        with self._lock:
            return sorted(self._meta.items())

    def _save_stream_meta(self, stream_id: str, meta: StreamMeta) -> None:
        with self._lock:
            self._meta[stream_id] = meta

    def _operations(self) -> list[Operation]:
        with self._lock:
            return list(self._operations_log)

    def _removals(self, stream_id: str | None) -> list[Removal]:
        with self._lock:
            return [r for r in self._removed if stream_id is None or r.stream_id == stream_id]

    def _lifecycle_write(
        self, selection: Selection | None, stream_id: str | None, prepare: Prepare
    ) -> Operation | None:
        with self._lock:
            rows = [] if selection is None else self._selected(selection)
            version = len(self._streams.get(stream_id, ())) if stream_id is not None else 0
            planned = prepare(rows, version)
            if planned is None:
                return None
            # The memory store's "trigger": only rows of the planned removals leave.
            for row in rows:
                self._log[row.position - 1] = None
                del self._ids[row.event_id]
            self._operations_log.append(planned.operation._replace(state="done"))
            self._removed.extend(planned.removals)
            self._meta.update(planned.meta)
            return planned.operation

    def _carry_operation(self, operation: Operation, removals: list[Removal]) -> bool:
        with self._lock:
            if any(op.operation_id == operation.operation_id for op in self._operations_log):
                return False
            for removal in removals:
                # The removed versions' positions: each removal logs its first and last one
                # (the slots between stay empty: read and verify skip them, as removed ones).
                positions = self._streams.setdefault(removal.stream_id, [])
                positions.append(removal.first_position)
                positions.extend(
                    [removal.last_position] * (removal.last_version - removal.first_version)
                )
                if removal.last_position > len(self._log):
                    self._log.extend([None] * (removal.last_position - len(self._log)))
            self._operations_log.append(operation._replace(state="done"))
            self._removed.extend(removals)
            return True

    def _carry_heads(self, removals: list[Removal]) -> int:
        return 0  # a stream's head is its positions' last: _carry_operation wrote them

    def _selected(self, selection: Selection) -> list[ChainRow]:
        if selection.stream_id is None:
            upto = self._log[: selection.through_position]
            return [row for row in upto if row is not None]
        kept = self._streams.get(selection.stream_id, [])
        rows = (self._log[p - 1] for p in kept[: selection.through_version])
        return [row for row in rows if row is not None]

    # -- erasure -------------------------------------------------------------------------------

    def _default_key_store(self) -> KeyStore:
        return self._keys

    def _log_forget(
        self, subject: str, at_us: int, by: str, reason: str, had_key: bool
    ) -> ForgottenSubject:
        with self._lock:
            entry = ForgottenSubject(
                len(self._forgotten) + 1, subject, from_micros(at_us), by, reason, had_key
            )
            self._forgotten.append(entry)
            return entry

    def _forget_log(self, after: int) -> list[ForgottenSubject]:
        with self._lock:
            return self._forgotten[after:]

    def _delete_snapshots_holding(self, needle: bytes) -> int:
        with self._lock:
            streams = {r.stream_id for r in self._log if r is not None and needle in r.data}
            return sum(len(self._snapshots.pop(s, {})) for s in streams)

    # -- for the contract suite's tamper tests ------------------------------------------------

    def tamper(self, stream_id: str, version: int, **changes: Any) -> None:
        """Rewrite a stored event behind the store's back (tests of ``verify`` use this)."""
        with self._lock:
            try:
                position = self._streams[stream_id][version - 1]
            except (KeyError, IndexError):
                raise ValidationError(f"no event {stream_id!r}@{version} to tamper with") from None
            row = self._log[position - 1]
            if row is None:
                raise ValidationError(f"no event {stream_id!r}@{version} to tamper with")
            self._log[position - 1] = row._replace(**changes)

    def tamper_delete(self, stream_id: str, version: int) -> None:
        """Remove a stored event behind the store's back, past the operations log (tests of
        ``verify`` use this)."""
        with self._lock:
            position = self._streams[stream_id][version - 1]
            row = self._log[position - 1]
            if row is not None:
                del self._ids[row.event_id]
            self._log[position - 1] = None


def _walk(
    log: list[ChainRow | None], positions: list[int], after: int, item: QueryItem
) -> Iterator[int]:
    """The positions after ``after`` of ``positions`` whose events match ``item``."""
    for position in itertools.islice(positions, bisect.bisect_right(positions, after), None):
        row = log[position - 1]
        if row is not None and item.matches(row.type, row.tags):
            yield position


class _LogSource:
    """Anchor rows from a copy of the memory store's log (position N at index N - 1)."""

    def __init__(self, log: list[ChainRow | None]) -> None:
        self._log = log

    def head_position(self) -> int:
        return len(self._log)

    def rows(self, after: int, upto: int) -> Iterator[AnchorRow]:
        for row in self._log[after:upto]:
            if row is not None:
                yield AnchorRow(row.position, row.stream_id, row.version, row.hash)

    def heads(self, upto: int) -> Iterator[AnchorHead]:
        last: dict[str, ChainRow] = {}
        for row in self._log[:upto]:
            if row is not None:
                last[row.stream_id] = row
        for stream_id in sorted(last):
            row = last[stream_id]
            yield AnchorHead(stream_id, row.version, row.position, row.hash)


class MemoryTransaction(Transaction):
    """A transaction of the memory store: writes go straight in, under the store's lock, and
    are undone on rollback."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store)
        self._memory = store
        self._log_length = len(store._log)
        self._saved_checkpoints = dict(store._checkpoints)
        self._saved_records = dict(store._records)
        # (stream id, version, the snapshot there before or None), in the order of the changes
        self.replaced_snapshots: list[tuple[str, int, Snapshot | None]] = []

    def undo(self) -> None:
        store = self._memory
        for stream_id, version, previous in reversed(self.replaced_snapshots):
            versions = store._snapshots.setdefault(stream_id, {})
            if previous is None:
                versions.pop(version, None)
            else:
                versions[version] = previous
            if not versions:
                del store._snapshots[stream_id]
        for row in reversed(store._log[self._log_length :]):
            assert row is not None  # a transaction removes nothing: lifecycle runs alone
            positions = store._streams[row.stream_id]
            positions.pop()
            if not positions:
                del store._streams[row.stream_id]
            del store._ids[row.event_id]
            for index, key in [(store._by_type, row.type)] + [
                (store._by_tag, tag) for tag in row.tags
            ]:
                kept = index[key]
                kept.pop()  # the row's position: the last one, as rows are undone newest first
                if not kept:
                    del index[key]
        del store._log[self._log_length :]
        store._checkpoints = self._saved_checkpoints
        store._records = self._saved_records

    def _append(
        self, batches: list[PreparedAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        # _append checks every batch before it writes any, so a failed call writes nothing.
        return self._memory._append(batches, condition)

    def _checkpoint(self, name: str) -> int | None:
        return self._memory._checkpoints.get(name)

    def _save_checkpoint(self, name: str, position: int, expected: int | None) -> bool:
        checkpoints = self._memory._checkpoints
        if checkpoints.get(name) != expected:
            return False
        checkpoints[name] = position
        return True

    def _delete_checkpoint(self, name: str) -> None:
        self._memory._checkpoints.pop(name, None)

    def _checkpoints(self) -> dict[str, int]:
        return dict(self._memory._checkpoints)

    def _record(self, name: str) -> bytes | None:
        return self._memory._records.get(name)

    def _save_record(self, name: str, data: bytes) -> None:
        self._memory._records[name] = data

    def _delete_record(self, name: str) -> None:
        self._memory._records.pop(name, None)

    def _records(self) -> list[tuple[str, bytes]]:
        return sorted(self._memory._records.items())
