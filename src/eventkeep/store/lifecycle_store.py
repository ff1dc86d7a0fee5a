"""The store's lifecycle API: delete streams, retention, ``compact``, ``archive``, reading
archived history back, and what ``verify`` checks of all of it. See docs/lifecycle.md.

Built once over a handful of backend primitives (the ``_``-prefixed methods at the end). The
one that removes events, ``_lifecycle_write``, is the only code that deletes stored events: in
one write transaction it selects the events, lets :meth:`LifecycleMixin._plan` write the archive
and build the operation, writes the operation (open) and its removals, deletes the events it
covers (the triggers let nothing else through), closes the operation and commits.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from eventkeep.errors import (
    ConfigurationError,
    IntegrityError,
    StreamDeletedError,
    ValidationError,
)
from eventkeep.store.anchors import AnchorHead, AnchorRow, AnchorSource
from eventkeep.store.archives import (
    archive_name,
    file_digest,
    read_archive,
    verify_chain_from,
    write_archive,
)
from eventkeep.store.hashing import GENESIS, ChainRow
from eventkeep.store.lifecycle import (
    Deletion,
    Operation,
    Removal,
    Retention,
    Selection,
    StreamMeta,
    check_retention,
    new_operation_id,
    removals_of,
    removed_through,
)
from eventkeep.store.recorded import RecordedEvent, recorded_from_row, to_micros
from eventkeep.store.types import StorageCheck
from eventkeep.store.validation import check_count, check_flag, check_stream_id, check_text

__all__ = ["CompactReport", "LifecycleMixin", "Planned", "Prepare"]

_MAX_LISTED = 20


class Planned(NamedTuple):
    """What ``_lifecycle_write`` writes: the operation, its removals and stream metadata."""

    operation: Operation
    removals: list[Removal]
    meta: dict[str, StreamMeta]


Prepare = Callable[[list[ChainRow], int], Planned | None]
"""Given the selected events and the stream's version (0 for the log), write the archive and
plan the operation; None: nothing to do (nothing is written)."""


class CompactReport(NamedTuple):
    """What ``compact`` did: one operation per stream it removed events of."""

    operations: tuple[Operation, ...]

    @property
    def events(self) -> int:
        return sum(op.events for op in self.operations)


class LifecycleMixin:
    """Mixed into :class:`~eventkeep.store.base.EventStore`."""

    archive_dir: Path | None
    url: str

    if TYPE_CHECKING:  # what it uses of EventStore
        from eventkeep.store.codec import Codec
        from eventkeep.store.types import StreamInfo

        codec: Codec

        def _stream_version(self, stream_id: str) -> int: ...
        def _paged_stream(
            self, stream_id: str, low: int, high: int | None, backwards: bool, remaining: int | None
        ) -> Iterator[RecordedEvent]: ...
        def joined_transaction(self) -> Any: ...
        def _clock(self, floor: int = 0) -> int: ...
        def list_streams(
            self, prefix: str = "", *, limit: int | None = None
        ) -> list[StreamInfo]: ...
        def _delete_snapshots(self, prefix: str) -> int: ...
        def _with_personal(self, page: Sequence[RecordedEvent]) -> Sequence[RecordedEvent]: ...
        def _anchor_source(self) -> contextlib.AbstractContextManager[AnchorSource]: ...

    # -- configuration ------------------------------------------------------------------------

    def _set_archive_dir(self, archive_dir: str | Path | None, default: Path | None) -> None:
        if archive_dir is not None and not isinstance(archive_dir, str | Path):
            raise ConfigurationError(f"archive_dir must be a path, got {archive_dir!r:.80}")
        chosen = Path(archive_dir) if archive_dir not in (None, "") else default
        self.archive_dir = chosen

    def _archives(self) -> Path:
        if self.archive_dir is None:
            raise ConfigurationError(
                f"{self.url} has no archive directory: open it with archive_dir=... (or "
                "?archive_dir=... in its URL); removed events are written there first"
            )
        return self.archive_dir

    # -- deleting -----------------------------------------------------------------------------

    def delete_stream(
        self,
        stream_id: str,
        *,
        hard: bool = False,
        by: str = "",
        reason: str = "",
        compress: bool = True,
    ) -> Operation:
        """Delete a stream: afterwards ``read_stream`` raises ``StreamDeletedError`` (saying
        when, by which operation, who and why). Soft (the default): a tombstone, the events
        stay. ``hard``: its events leave the live tables too, through an archive file. Its
        version stays: an append expecting that version revives the stream (reads then start
        after the deletion)."""
        stream_id = check_stream_id(stream_id)
        hard = check_flag(hard, what="hard")
        by, reason = _who(by, reason)
        if self._stream_version(stream_id) == 0:
            raise ValidationError(f"stream {stream_id!r} does not exist: nothing to delete")
        kind = "hard-delete" if hard else "delete"
        if hard:
            self._archives()
        selection = Selection(stream_id, through_version=2**62) if hard else None
        result = self._removing(kind, stream_id, selection, by, reason, compress, tombstone=True)
        assert result is not None  # a delete always writes its operation
        return result

    # -- retention and compaction -------------------------------------------------------------

    def set_retention(
        self,
        stream_id: str,
        *,
        max_age: float | None = None,
        max_count: int | None = None,
        truncate_before: int | None = None,
    ) -> Retention:
        """Set the stream's retention (replacing any before; all None clears it). Nothing is
        removed until ``compact`` runs."""
        stream_id = check_stream_id(stream_id)
        retention = check_retention(max_age, max_count, truncate_before)
        meta = self._stream_meta(stream_id) or StreamMeta()
        self._save_stream_meta(
            stream_id, meta._replace(retention=None if retention.empty else retention)
        )
        return retention

    def retention(self, stream_id: str) -> Retention | None:
        meta = self._stream_meta(check_stream_id(stream_id))
        return None if meta is None else meta.retention

    def compact(
        self,
        *,
        now: float | None = None,
        by: str = "",
        reason: str = "retention",
        compress: bool = True,
    ) -> CompactReport:
        """Apply every stream's retention: archive, then remove, what it says is gone. Running
        it again removes nothing new (one operation per stream that lost events). ``now``:
        seconds since the epoch to measure ``max_age`` from (default: the clock)."""
        by, reason = _who(by, reason)
        moment = time.time() if now is None else float(now)
        done: list[Operation] = []
        for stream_id, meta in self._stream_metas():
            if meta.retention is None:
                continue
            through = self._retained_through(stream_id, meta.retention, moment)
            if through <= 0:
                continue
            self._archives()
            result = self._removing(
                "retention", stream_id, Selection(stream_id, through), by, reason, compress
            )
            if result is not None:
                done.append(result)
        return CompactReport(tuple(done))

    def _retained_through(self, stream_id: str, retention: Retention, moment: float) -> int:
        """The last version retention removes (0: none)."""
        version = self._stream_version(stream_id)
        through = 0
        if retention.max_count is not None:
            through = max(through, version - retention.max_count)
        if retention.truncate_before is not None:
            through = max(through, min(version, retention.truncate_before - 1))
        if retention.max_age is not None:
            cutoff = round((moment - retention.max_age) * 1_000_000)
            low = self.first_version(stream_id)
            for event in self._paged_stream(stream_id, low, None, False, None):
                if to_micros(event.recorded_at) >= cutoff:
                    break
                through = max(through, event.version)
        return through

    def truncate(
        self, stream_id: str, before_version: int, *, by: str = "", reason: str = ""
    ) -> Operation | None:
        """Remove (through an archive) the events of ``stream_id`` before ``before_version``."""
        stream_id = check_stream_id(stream_id)
        before = check_count(before_version, what="before_version", minimum=1)
        by, reason = _who(by, reason)
        self._archives()
        return self._removing(
            "truncate", stream_id, Selection(stream_id, before - 1), by, reason, True
        )

    def archive(
        self,
        stream_id: str | None = None,
        *,
        before_version: int | None = None,
        before_position: int | None = None,
        by: str = "",
        reason: str = "",
        compress: bool = True,
    ) -> Operation | None:
        """Move an old prefix into an archive file, out of the live tables: the events of
        ``stream_id`` before ``before_version``, or (no stream) every event of the log before
        ``before_position``. Returns the logged operation (None: nothing to move)."""
        by, reason = _who(by, reason)
        if stream_id is not None:
            stream_id = check_stream_id(stream_id)
            if before_version is None or before_position is not None:
                raise ValidationError("archive(stream_id) takes before_version (only)")
            before = check_count(before_version, what="before_version", minimum=1)
            selection = Selection(stream_id, before - 1)
        else:
            if before_position is None or before_version is not None:
                raise ValidationError("archive() of the whole log takes before_position (only)")
            before = check_count(before_position, what="before_position", minimum=1)
            selection = Selection(None, through_position=before - 1)
        self._archives()
        return self._removing("archive", stream_id, selection, by, reason, compress)

    # -- the log ------------------------------------------------------------------------------

    def operations(self) -> list[Operation]:
        """The operations log, oldest first."""
        return self._operations()

    def removals(self, stream_id: str | None = None) -> list[Removal]:
        """What each operation removed of each stream (of ``stream_id`` only, if given)."""
        if stream_id is not None:
            stream_id = check_stream_id(stream_id)
        return self._removals(stream_id)

    def first_version(self, stream_id: str) -> int:
        """The first version of ``stream_id`` still in the live tables (1 if none removed)."""
        last = removed_through(self._removals(check_stream_id(stream_id))).get(stream_id)
        return 1 if last is None else last.last_version + 1

    def deletion(self, stream_id: str) -> StreamDeletedError | None:
        """What ``read_stream`` would raise for a deleted stream, or None when it is live."""
        stream_id = check_stream_id(stream_id)
        meta = self._stream_meta(stream_id)
        return None if meta is None else self._deleted(stream_id, meta)

    # -- the one removal path -----------------------------------------------------------------

    def _removing(
        self,
        kind: str,
        stream_id: str | None,
        selection: Selection | None,
        by: str,
        reason: str,
        compress: bool,
        *,
        tombstone: bool = False,
    ) -> Operation | None:
        if self.joined_transaction() is not None:
            raise ValidationError(
                "lifecycle operations run in a transaction of their own, not inside "
                "store.transaction()"
            )
        check_flag(compress, what="compress")
        operation_id = new_operation_id()

        def prepare(rows: list[ChainRow], version: int) -> Planned | None:
            if not rows and not tombstone:
                return None
            archive_file = digest = None
            if rows:
                archive_file = archive_name(operation_id, kind, compress)
                header = {
                    "operation_id": operation_id,
                    "kind": kind,
                    "stream_id": stream_id,
                    "events": len(rows),
                    "store": self.url,
                }
                digest = write_archive(self._archives(), archive_file, header, rows)
            positions = [row.position for row in rows]
            operation = Operation(
                operation_id,
                kind,
                stream_id,
                "open" if rows else "done",
                self._clock(),
                by,
                reason,
                len(rows),
                min(positions) if positions else None,
                max(positions) if positions else None,
                archive_file,
                digest,
            )
            meta: dict[str, StreamMeta] = {}
            if tombstone and stream_id is not None:
                kept = self._stream_meta(stream_id) or StreamMeta()
                deletion = Deletion(version, operation_id, kind == "hard-delete")
                meta[stream_id] = kept._replace(deletion=deletion)
            return Planned(operation, removals_of(operation_id, rows), meta)

        result = self._lifecycle_write(selection, stream_id, prepare)
        if result is None:
            return None
        if kind == "hard-delete" and stream_id is not None:
            self._delete_stream_snapshots(stream_id)
        return result._replace(state="done")

    def _delete_stream_snapshots(self, stream_id: str) -> None:
        """Snapshots hold state derived from the events: a hard delete takes the stream's too
        (unless another stream's id starts with this one: snapshots are deleted by prefix)."""
        streams = self.list_streams(stream_id, limit=2)
        if [info.stream_id for info in streams] == [stream_id]:
            self._delete_snapshots(stream_id)

    # -- reading ------------------------------------------------------------------------------

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
        live = self._paged_stream(stream_id, max(low, first_live), high, False, None)
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
            checked.append(f"operation {_describe(op)}")
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
                        + (f" ({_describe(op)})" if op else "")
                        + f" and cannot be put back: {exc}"
                    )
                    continue
                restored.extend(AnchorRow(r.position, r.stream_id, r.version, r.hash) for r in rows)
            yield _RestoredSource(source, restored), missing

    # -- backend primitives -------------------------------------------------------------------

    def _stream_meta(self, stream_id: str) -> StreamMeta | None:
        return None

    def _stream_metas(self) -> list[tuple[str, StreamMeta]]:
        return []

    def _save_stream_meta(self, stream_id: str, meta: StreamMeta) -> None:
        raise ConfigurationError(f"{type(self).__name__} does not support stream lifecycle")

    def _operations(self) -> list[Operation]:
        return []

    def _removals(self, stream_id: str | None) -> list[Removal]:
        return []

    def _lifecycle_write(
        self, selection: Selection | None, stream_id: str | None, prepare: Prepare
    ) -> Operation | None:
        """In one write transaction: select the events (none without ``selection``), call
        ``prepare`` with them and the stream's version, write what it planned (the operation
        open while events are deleted), delete the covered events and their tags, close the
        operation, save the metadata; returns the operation (None when ``prepare`` did)."""
        raise ConfigurationError(f"{type(self).__name__} does not support stream lifecycle")

    def _carry_operation(self, operation: Operation, removals: list[Removal]) -> bool:
        """Write another store's ``operation`` and its ``removals`` as they are (a copy of the
        store, :mod:`eventkeep.moving.lifecycle`), in one transaction, the way
        ``_lifecycle_write`` writes them (open, removals, closed); deletes nothing. False when
        the operation is here already."""
        raise ConfigurationError(f"{type(self).__name__} does not support stream lifecycle")

    def _carry_heads(self, removals: list[Removal]) -> int:
        """Write, in one transaction, the head of each removal's stream that has none (naming
        the removal's last event: a stream whose events were all removed); returns how many."""
        raise ConfigurationError(f"{type(self).__name__} does not support stream lifecycle")


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


def _who(by: Any, reason: Any) -> tuple[str, str]:
    if by in ("", None):
        import getpass

        try:
            by = getpass.getuser()
        except Exception:
            by = "unknown"
    return check_text(by, what="by"), check_text(reason or "", what="reason")


def _describe(op: Operation) -> str:
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
