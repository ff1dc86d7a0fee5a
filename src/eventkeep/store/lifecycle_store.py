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
    StreamDeletedError,
    ValidationError,
)
from eventkeep.store.anchors import AnchorSource
from eventkeep.store.archives import (
    archive_name,
    write_archive,
)
from eventkeep.store.hashing import ChainRow
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
from eventkeep.store.lifecycle_reads import LifecycleReads
from eventkeep.store.recorded import RecordedEvent, to_micros
from eventkeep.store.validation import check_count, check_flag, check_stream_id, check_text

__all__ = ["CompactReport", "LifecycleMixin", "Planned", "Prepare"]


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


class LifecycleMixin(LifecycleReads):
    """Mixed into :class:`~eventkeep.store.base.EventStore`."""

    archive_dir: Path | None
    url: str

    if TYPE_CHECKING:  # what it uses of EventStore
        from eventkeep.store.codec import Codec
        from eventkeep.store.types import StreamInfo

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
            for event in self._paged_stream(stream_id, low, None, False, None, False):
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
        the removal's last event: a stream whose events were all removed); returns how many. A
        backend that stores no heads (PostgreSQL) writes nothing: the carried removals are the
        heads."""
        raise ConfigurationError(f"{type(self).__name__} does not support stream lifecycle")


def _who(by: Any, reason: Any) -> tuple[str, str]:
    if by in ("", None):
        import getpass

        try:
            by = getpass.getuser()
        except Exception:
            by = "unknown"
    return check_text(by, what="by"), check_text(reason or "", what="reason")
