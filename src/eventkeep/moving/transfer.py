"""Export and import of stored events, and copying one store into another.

Everything here stands on two backend primitives, ``EventStore._export_page`` (stored events in
log order, hashes included) and ``EventStore._import_rows`` (a batch written as it is, decided
by :func:`eventkeep.store.importing.plan_import`), so memory, SQLite and PostgreSQL, in any
pairing, move history the same way.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

from eventkeep.errors import ValidationError
from eventkeep.moving.erasure import KEYS, KeyCarrier
from eventkeep.moving.lifecycle import copy_archives
from eventkeep.moving.side import copy_side_records
from eventkeep.store.base import EventStore
from eventkeep.store.hashing import ChainRow
from eventkeep.store.importing import ImportPlan, Numbering, Predictor
from eventkeep.store.transfer import (
    Progress,
    check_outside_transaction,
    check_row,
    export_events,
    import_batches,
    import_events,
    removed_floor,
)

__all__ = [
    "BULK_LOAD_FROM",
    "COPY_BATCH_SIZE",
    "CopyReport",
    "check_row",
    "copy_store",
    "export_events",
    "import_events",
    "resume_position",
]

COPY_BATCH_SIZE = 5000
"""Events per transaction of ``copy_store`` (measured in benchmarks/copying.py)."""

BULK_LOAD_FROM = 10_000
"""Events to copy from which ``copy_store`` bulk loads an empty target that can (PostgreSQL:
its indexes built once at the end, benchmarks/README.md); below it, the index builds would
cost more than they save."""


class CopyReport(NamedTuple):
    """What ``copy_store`` did: events written and skipped, the source position it resumed
    after (0: it started from the beginning), the source's head position it copied up to, and
    the archive files it copied (0 also when either store has no archive directory)."""

    written: int
    skipped: int
    resumed_after: int
    source_head: int
    archives_copied: int = 0


def resume_position(source: EventStore, target: EventStore) -> int:
    """The source position up to which ``target`` already holds a copy of ``source``'s log:
    the position of the target's last stored event, which must be the source's event there
    (0 when the target holds no event; removed events, and operations a copy carried, do not
    count: positions are kept).

    Raises ``ValidationError`` when the target's first or last event is not the source's
    event at that place (same id, stream, version and hash): the target is not a copy of the
    source (an import of part of its streams, say).
    """
    head = target._last_event_position()
    if head == 0:
        return 0
    last = target._export_page(head - 1, 1, None)
    if not last:
        raise ValidationError(f"{target.url}: no event at its last position {head}")
    mine = last[0]
    theirs = source._export_page(mine.position - 1, 1, None)
    if not theirs or _identity(theirs[0]) != _identity(mine):
        raise ValidationError(
            f"{target.url} is not a copy of {source.url}: its last event (stream "
            f"{mine.stream_id!r}, version {mine.version}) is not the source's event there "
            "(same id and hash); copy into an empty store"
        )
    first_theirs = source._export_page(0, 1, None)
    first_mine = target._export_page(0, 1, None)
    if _identity(first_theirs[0]) != _identity(first_mine[0]):
        raise ValidationError(
            f"{target.url} is not a copy of {source.url}: its first event (stream "
            f"{first_mine[0].stream_id!r}, version {first_mine[0].version}) is not the "
            "source's first event; copy into an empty store"
        )
    return theirs[0].position


def _target_state(target: EventStore, floor: int) -> tuple[Numbering, int]:
    """Where ``target``'s log stands (its numbering, its last event's time) as an import
    batch would find it now: the :class:`~eventkeep.store.importing.Predictor`'s start."""
    last = target._last_event_position()
    found = target._export_page(last - 1, 1, None) if last else []
    at = found[0].recorded_at_us if found else 0
    return Numbering(max(target.head_position(), last), max(last, floor)), at


def _identity(row: ChainRow) -> tuple[str, int, int, bytes, bytes]:
    return (row.stream_id, row.version, row.position, row.event_id, row.hash)


def copy_store(
    source: EventStore,
    target: EventStore,
    *,
    batch_size: int = COPY_BATCH_SIZE,
    on_batch: Progress | None = None,
    bulk: bool | None = None,
) -> CopyReport:
    """Copy every event of ``source`` into ``target`` one to one (ids, versions, order,
    ``recorded_at``, bytes, tags, hashes), ``batch_size`` per transaction of the target.

    Resumable: interrupted (even SIGKILLed), the same call finishes the copy, starting after
    the source position of the target's last event (:func:`resume_position`); batches commit
    whole, so the target always holds a prefix of the source's log, and an event already there
    is skipped, never duplicated. Events appended to the source meanwhile are copied up to the
    source's head when the copy began; run it again to take the rest.

    The side tables (:data:`eventkeep.moving.side.SIDE_TABLES`: the lifecycle's operations
    log, removals and stream metadata) are copied first, then, when both stores have an
    archive directory, the archive files the operations name; events keep their positions,
    gaps included; the keys of personal data are copied page by page, each page's before its
    events. Snapshots and projection checkpoints are not copied (docs/moving.md).

    ``bulk``: whether to bulk load an empty target that can be (PostgreSQL: the events table's
    secondary indexes dropped, then built once the events are in; the store refuses to open
    normally until then, and this same call, run again, finishes an interrupted load). None:
    when at least :data:`BULK_LOAD_FROM` events are to be copied. An unfinished bulk load is
    resumed whatever ``bulk`` says.
    """
    if source is target:
        raise ValidationError("copy_store needs two different stores")
    check_outside_transaction(target)
    after = resume_position(source, target)
    head = source.head_position()
    # The keys of personal data go page by page with the events (KeyCarrier): not a pass
    # over the whole source log first.
    copy_side_records(source, target, skip=(KEYS,))
    archives = copy_archives(source, target)
    carried = {op.operation_id for op in source._operations()}
    keys = KeyCarrier(source, target)
    floor = removed_floor(target, carried)
    predictor = Predictor(*_target_state(target, floor), floor)
    start = bulk if bulk is not None else head - after >= BULK_LOAD_FROM
    loader = target._bulk_load(source.url, start)
    prepare = None if loader is None else loader.prepare
    try:
        with _Prefetch(source, after, head, batch_size, predictor, keys.carry, prepare) as batches:
            report = import_batches(target, batches, floor, on_batch, loader)
        if loader is not None:
            loader.finish()
    finally:
        if loader is not None:
            loader.close()
    copied = archives.copied if archives is not None else 0
    return CopyReport(report.written, report.skipped, after, head, copied)


class _Prefetch:
    """The source's events up to ``head``, read page by page on a thread of their own while
    the target writes the previous page (the two overlap: reading waits on one database,
    writing on the other). The same thread plans each page ahead (``predictor``), so the
    writer's transaction, which appends wait for, does not; and ``prepare`` (a bulk load's)
    readies each plan for writing. ``before_page`` runs on the writer's thread before a
    page's events are written."""

    def __init__(
        self,
        source: EventStore,
        after: int,
        head: int,
        size: int,
        predictor: Predictor,
        before_page: Callable[[list[ChainRow]], None],
        prepare: Callable[[ImportPlan], None] | None = None,
    ) -> None:
        self._before_page = before_page
        self._prepare = prepare
        self._pages: queue.Queue[_Page | BaseException | None] = queue.Queue(2)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._read, args=(source, after, head, size, predictor), daemon=True
        )

    def _read(
        self, source: EventStore, after: int, head: int, size: int, predictor: Predictor
    ) -> None:
        try:
            while after < head and not self._stop.is_set():
                page = source._export_page(after, size, None)
                if page and page[-1].position > head:  # the last page: events appended since
                    page = [row for row in page if row.position <= head]
                if not page:
                    break
                plan = predictor.plan(page)
                if plan is not None and self._prepare is not None:
                    self._prepare(plan)
                self._put((page, plan))
                after = page[-1].position
            self._put(None)
        except BaseException as exc:  # handed to the writing thread, raised there
            self._put(exc)

    def _put(self, item: _Page | BaseException | None) -> None:
        while not self._stop.is_set():
            try:
                self._pages.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __enter__(self) -> Iterator[_Page]:
        self._thread.start()
        return self._batches()

    def _batches(self) -> Iterator[_Page]:
        while True:
            item = self._pages.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            self._before_page(item[0])
            yield item

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


_Page = tuple[list[ChainRow], ImportPlan | None]
