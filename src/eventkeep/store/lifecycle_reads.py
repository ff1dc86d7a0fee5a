"""The reading half of the store's lifecycle: whether a stream is deleted, archived history read
back (each archive checked against the operations log and its hash chain), and what ``verify``
and the anchors check of the operations log. :class:`~eventkeep.store.lifecycle_store.
LifecycleMixin` builds the writing half on it. See docs/lifecycle.md."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from eventkeep.errors import (
    IntegrityError,
    StreamDeletedError,
)
from eventkeep.store.anchors import AnchorHead, AnchorRow, AnchorSource
from eventkeep.store.archives import (
    file_digest,
    read_archive,
    verify_chain_from,
)
from eventkeep.store.hashing import GENESIS, ChainRow
from eventkeep.store.lifecycle import (
    Operation,
    Removal,
    StreamMeta,
)
from eventkeep.store.recorded import RecordedEvent, recorded_from_row
from eventkeep.store.types import StorageCheck

__all__ = ["LifecycleReads", "describe"]

_MAX_LISTED = 20


class LifecycleReads:
    """The lifecycle's reads; the backend primitives are ``LifecycleMixin``'s."""

    archive_dir: Path | None

    if TYPE_CHECKING:  # what it uses of EventStore and LifecycleMixin
        from eventkeep.store.codec import Codec

        codec: Codec

        def _stream_version(self, stream_id: str) -> int: ...
        def _paged_stream(
            self,
            stream_id: str,
            low: int,
            high: int | None,
            backwards: bool,
            remaining: int | None,
            live: bool = True,
        ) -> Iterator[RecordedEvent]: ...
        def _with_personal(self, page: Sequence[RecordedEvent]) -> Sequence[RecordedEvent]: ...
        def _anchor_source(self) -> contextlib.AbstractContextManager[AnchorSource]: ...
        def _archives(self) -> Path: ...
        def _stream_meta(self, stream_id: str) -> StreamMeta | None: ...
        def _operations(self) -> list[Operation]: ...
        def _removals(self, stream_id: str | None) -> list[Removal]: ...

    def _deleted(self, stream_id: str, meta: StreamMeta) -> StreamDeletedError | None:
        deletion = meta.deletion
        if deletion is None:
            return None
        if self._stream_version(stream_id) > deletion.version:
            return None  # revived by an append since
        op = next((o for o in self._operations() if o.operation_id == deletion.operation_id), None)
        return StreamDeletedError(
            stream_id,
            deletion.version,
            deletion.operation_id,
            hard=deletion.hard,
            deleted_at=op.recorded_at if op else 0,
            by=op.by if op else "",
            reason=op.reason if op else "",
        )

    def _lifecycle_low(self, stream_id: str, low: int, archived: bool) -> int:
        """The first version ``read_stream`` may return: raises for a deleted stream (unless
        ``archived``), and starts a revived one after its deletion."""
        if archived:
            return low
        after_deletion = self._deletion_low(stream_id, low)
        return low if after_deletion is None else after_deletion

    def _deletion_low(self, stream_id: str, low: int) -> int | None:
        """None for a stream never deleted; raises for a deleted one; for a revived one, the
        first version a read may return."""
        meta = self._stream_meta(stream_id)
        if meta is None or meta.deletion is None:
            return None
        deleted = self._deleted(stream_id, meta)
        if deleted is not None:
            raise deleted
        return max(low, meta.deletion.version + 1)

    def _archived_stream(
        self, stream_id: str, low: int, high: int | None, backwards: bool, remaining: int | None
    ) -> Iterator[RecordedEvent]:
        """``read_stream(..., archived=True)``: archived events below the live ones, each
        archive checked against its logged digest and hash chain, then the live events."""
        removals = sorted(self._removals(stream_id), key=lambda r: r.first_version)
        first_live = removals[-1].last_version + 1 if removals else 1
        top = high if high is not None else 2**62
        events: list[RecordedEvent] = []
        if low < first_live and removals:
            ops = {op.operation_id: op for op in self._operations()}
            previous = GENESIS
            for removal in removals:
                if removal.last_version >= low and removal.first_version <= top:
                    op = ops.get(removal.operation_id)
                    if op is None:
                        raise IntegrityError(
                            f"the removal of {stream_id!r} versions {removal.first_version}-"
                            f"{removal.last_version} names operation {removal.operation_id}, "
                            "which the operations log does not hold"
                        )
                    rows = self._archived_rows(op, removal, previous)
                    # Personal fields revealed (or redacted once forgotten), as on live reads.
                    events.extend(
                        self._with_personal(
                            [
                                recorded_from_row(row, self.codec)
                                for row in rows
                                if low <= row.version <= top
                            ]
                        )
                    )
                previous = removal.last_hash
        live = self._paged_stream(stream_id, max(low, first_live), high, False, None, False)
        events.extend(live)
        if backwards:
            events.reverse()
        if remaining is not None:
            events = events[:remaining]
        return iter(events)

    def _archived_rows(self, op: Operation, removal: Removal, previous: bytes) -> list[ChainRow]:
        if op.archive_file is None or op.archive_digest is None:
            raise IntegrityError(f"operation {op.operation_id} removed events but names no archive")
        rows = read_archive(self._archives() / op.archive_file, op.archive_digest)
        mine = sorted(
            (r for r in rows if r.stream_id == removal.stream_id), key=lambda r: r.version
        )
        wrong = verify_chain_from(previous, mine, removal.last_hash)
        if wrong is not None:
            raise IntegrityError(f"archive {op.archive_file}: {wrong}")
        return mine

    # -- verify -------------------------------------------------------------------------------

    def _check_lifecycle(self) -> StorageCheck:
        """The operations log: every archive against its digest (when the file is there), and
        no operation left open. Says what was removed, when and by which operation."""
        ops = self._operations()
        if not ops:
            return StorageCheck()
        checked: list[str] = []
        not_checked: list[str] = []
        problems: list[str] = []
        removing = [op for op in ops if op.events]
        checked.append(
            f"the operations log: {len(ops)} operation(s), {len(removing)} of which removed "
            f"{sum(op.events for op in removing)} event(s); the chains verify from the hash "
            "it logged for each stream's last removed event"
        )
        for op in ops[:_MAX_LISTED]:
            checked.append(f"operation {describe(op)}")
        if len(ops) > _MAX_LISTED:
            checked.append(f"... and {len(ops) - _MAX_LISTED} more (eventkeep operations)")
        for op in ops:
            if op.state != "done":
                problems.append(
                    f"operation {op.operation_id} ({op.kind}) is still open: it was not "
                    "written by eventkeep's removal path (which closes it before committing)"
                )
            if op.archive_file is None or op.archive_digest is None:
                continue
            if self.archive_dir is None:
                not_checked.append(
                    f"archive {op.archive_file} of operation {op.operation_id}: this store "
                    "has no archive directory"
                )
                continue
            found = file_digest(self.archive_dir / op.archive_file)
            if found is None:
                not_checked.append(
                    f"archive {op.archive_file} of operation {op.operation_id}: the file is "
                    f"not in {self.archive_dir}"
                )
            elif found != op.archive_digest:
                problems.append(
                    f"archive {op.archive_file} of operation {op.operation_id}: its sha256 is "
                    f"{found}, the operations log recorded {op.archive_digest}: the file was "
                    "changed after it was written"
                )
            else:
                checked.append(f"archive {op.archive_file}: its sha256 matches the log")
        return StorageCheck(tuple(checked), tuple(not_checked), tuple(problems))

    @contextlib.contextmanager
    def _anchor_view(self) -> Iterator[tuple[AnchorSource, list[str]]]:
        """The anchor source, with the removed events put back from their archives (checked)
        where the files are there; the second item says which removals could not be."""
        with self._anchor_source() as source:
            removals = self._removals(None)
            if not removals:
                yield source, []
                return
            ops = {op.operation_id: op for op in self._operations()}
            restored: list[AnchorRow] = []
            missing: list[str] = []
            previous: dict[str, bytes] = {}
            for removal in sorted(removals, key=lambda r: (r.stream_id, r.first_version)):
                op = ops.get(removal.operation_id)
                start = previous.get(removal.stream_id, GENESIS)
                previous[removal.stream_id] = removal.last_hash
                try:
                    assert op is not None
                    rows = self._archived_rows(op, removal, start)
                except Exception as exc:
                    missing.append(
                        f"positions {removal.first_position}-{removal.last_position} of "
                        f"{removal.stream_id!r} (versions {removal.first_version}-"
                        f"{removal.last_version}) were removed by operation "
                        f"{removal.operation_id}"
                        + (f" ({describe(op)})" if op else "")
                        + f" and cannot be put back: {exc}"
                    )
                    continue
                restored.extend(AnchorRow(r.position, r.stream_id, r.version, r.hash) for r in rows)
            yield _RestoredSource(source, restored), missing


class _RestoredSource:
    """An anchor source with archived rows merged back in, by position."""

    def __init__(self, live: AnchorSource, restored: Sequence[AnchorRow]) -> None:
        self._live = live
        self._restored = sorted(restored)

    def head_position(self) -> int:
        return self._live.head_position()

    def rows(self, after: int, upto: int) -> Iterator[AnchorRow]:
        import heapq

        extra = [r for r in self._restored if after < r.position <= upto]
        yield from heapq.merge(self._live.rows(after, upto), extra)

    def heads(self, upto: int) -> Iterator[AnchorHead]:
        last: dict[str, AnchorRow] = {}
        for row in self.rows(0, upto):
            last[row.stream_id] = row
        for stream_id in sorted(last):
            row = last[stream_id]
            yield AnchorHead(stream_id, row.version, row.position, row.hash)


def describe(op: Operation) -> str:
    import datetime

    when = datetime.datetime.fromtimestamp(op.recorded_at / 1e6, datetime.UTC)
    what = f"{op.kind} of {op.stream_id!r}" if op.stream_id else f"{op.kind} of the log"
    removed = (
        f", {op.events} event(s) at positions {op.first_position}-{op.last_position} "
        f"into {op.archive_file}"
        if op.events
        else ""
    )
    why = f", reason {op.reason!r}" if op.reason else ""
    return (
        f"{op.operation_id}: {what} at {when.isoformat(timespec='seconds')} by "
        f"{op.by!r}{removed}{why}"
    )
