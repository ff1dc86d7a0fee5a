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
from collections.abc import Iterator
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
from eventkeep.store.planner import Head, plan_append
from eventkeep.store.recorded import RecordedEvent, from_micros
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
        key_store: KeyStore | None = None,
    ) -> None:
        super().__init__(registry=registry, max_event_bytes=max_event_bytes, key_store=key_store)
        self.url = url
        self._keys = MemoryKeyStore()
        self._forgotten: list[ForgottenSubject] = []
        self._lock = threading.RLock()
        self._log: list[ChainRow] = []  # index = position - 1
        self._streams: dict[str, list[int]] = {}  # stream id -> positions, index = version - 1
        self._ids: dict[bytes, int] = {}  # event id -> position
        # Tag and type -> positions, ascending: a query item walks one from a position on.
        self._by_tag: dict[str, list[int]] = {}
        self._by_type: dict[str, list[int]] = {}
        self._snapshots: dict[str, dict[int, Snapshot]] = {}
        self._checkpoints: dict[str, int] = {}
        self._records: dict[str, bytes] = {}

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
                query = condition.fail_if_events_match
                matched = next(self._matching(query, condition.after or 0), None)
            heads = self._heads(batches)
            plan = plan_append(batches, heads, stored, condition, matched)
            if plan.conflict is not None:
                raise plan.conflict
            # Every check passed and every row is built before any is stored, so nothing can
            # leave a partial append behind.
            first = len(self._log) + 1
            now = self._clock(
                max(plan.time_floor(), self._log[-1].recorded_at_us if self._log else 0)
            )
            staged = [
                ChainRow(row.stream_id, row.version, position, *row[2:])
                for position, row in enumerate(plan.rows(now), first)
            ]
            for row in staged:
                self._log.append(row)
                self._streams.setdefault(row.stream_id, []).append(row.position)
                ids[row.event_id] = row.position
                self._by_type.setdefault(row.type, []).append(row.position)
                for tag in row.tags:
                    self._by_tag.setdefault(tag, []).append(row.position)
            return plan.results(first)

    def _store_new_keys(self, batches: list[PreparedAppend]) -> None:
        made = {s: k for batch in batches for ev in batch.events for s, k in ev.keys}
        lost = [s for s, k in made.items() if self._keys.create_key(s, k) != k]
        if lost:
            raise KeyConflictError(lost)

    def _heads(self, batches: list[PreparedAppend]) -> dict[str, Head]:
        heads: dict[str, Head] = {}
        for batch in batches:
            positions = self._streams.get(batch.stream_id)
            if positions:
                last = self._log[positions[-1] - 1]
                heads[batch.stream_id] = Head(len(positions), last.hash, last.recorded_at_us)
        return heads

    def _identity(self, position: int) -> StoredIdentity:
        row = self._log[position - 1]
        return StoredIdentity(
            row.event_id, row.stream_id, row.version, row.position, row.type, row.data
        )

    def _record(self, row: ChainRow) -> RecordedEvent:
        return RecordedEvent(
            row.stream_id,
            row.version,
            row.position,
            row.event_id,
            row.type,
            row.schema_version,
            row.data,
            row.metadata,
            row.recorded_at_us,
            self.codec,
            row.tags,
        )

    def _read_stream_page(
        self, stream_id: str, low: int, high: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        with self._lock:
            positions = self._streams.get(stream_id, [])
            top = len(positions) if high is None else min(high, len(positions))
            if backwards:
                chosen = positions[max(low - 1, top - limit) : top][::-1]
            else:
                chosen = positions[low - 1 : min(top, low - 1 + limit)]
            return [self._record(self._log[p - 1]) for p in chosen]

    def _read_all_page(
        self, after: int, limit: int, types: tuple[str, ...] | None, prefix: str | None
    ) -> list[RecordedEvent]:
        with self._lock:
            out: list[RecordedEvent] = []
            wanted = None if types is None else set(types)
            log = self._log
            for index in range(after, len(log)):
                row = log[index]
                if wanted is not None and row.type not in wanted:
                    continue
                if prefix is not None and not row.stream_id.startswith(prefix):
                    continue
                out.append(self._record(row))
                if len(out) >= limit:
                    break
            return out

    def _matching(self, query: Query, after: int) -> Iterator[int]:
        """The positions of the events matching ``query`` after ``after``, in order: each item
        walks the positions of its first tag (or of each of its types) from ``after`` on."""
        if query.matches_all:
            yield from range(after + 1, len(self._log) + 1)
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

    def _read_query_page(self, query: Query, after: int, limit: int) -> list[RecordedEvent]:
        with self._lock:
            out: list[RecordedEvent] = []
            for position in self._matching(query, after):
                out.append(self._record(self._log[position - 1]))
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
            types = Counter(row.type for row in self._log)
            return StoreStats(len(self._log), len(self._streams), len(self._log), dict(types))

    def _verify(self) -> VerifyReport:
        with self._lock:
            rows = sorted(self._log, key=lambda row: (row.stream_id, row.version))
            log = self._log
            heads = {
                s: StreamHead(len(p), p[-1], log[p[-1] - 1].hash) for s, p in self._streams.items()
            }
        return verify_chains(rows, heads)

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
            streams = {row.stream_id for row in self._log if needle in row.data}
            return sum(len(self._snapshots.pop(s, {})) for s in streams)

    # -- for the contract suite's tamper tests ------------------------------------------------

    def tamper(self, stream_id: str, version: int, **changes: Any) -> None:
        """Rewrite a stored event behind the store's back (tests of ``verify`` use this)."""
        with self._lock:
            try:
                position = self._streams[stream_id][version - 1]
            except (KeyError, IndexError):
                raise ValidationError(f"no event {stream_id!r}@{version} to tamper with") from None
            self._log[position - 1] = self._log[position - 1]._replace(**changes)


def _walk(log: list[ChainRow], positions: list[int], after: int, item: QueryItem) -> Iterator[int]:
    """The positions after ``after`` of ``positions`` whose events match ``item``."""
    for position in itertools.islice(positions, bisect.bisect_right(positions, after), None):
        row = log[position - 1]
        if item.matches(row.type, row.tags):
            yield position


class _LogSource:
    """Anchor rows from a copy of the memory store's log (position N at index N - 1)."""

    def __init__(self, log: list[ChainRow]) -> None:
        self._log = log

    def head_position(self) -> int:
        return len(self._log)

    def rows(self, after: int, upto: int) -> Iterator[AnchorRow]:
        for row in self._log[after:upto]:
            yield AnchorRow(row.position, row.stream_id, row.version, row.hash)

    def heads(self, upto: int) -> Iterator[AnchorHead]:
        last: dict[str, ChainRow] = {}
        for row in self._log[:upto]:
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
