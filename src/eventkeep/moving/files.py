"""Export files: a store's events written to a JSON lines file, and such a file imported."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, NamedTuple

from eventkeep.moving.jsonl import ExportHeader, SideRecord, read_export, write_export
from eventkeep.moving.lifecycle import ArchiveCopy, carried_operations, take_archives
from eventkeep.moving.side import import_side_records, side_records
from eventkeep.store.base import EventStore
from eventkeep.store.hashing import ChainRow
from eventkeep.store.transfer import (
    Progress,
    check_outside_transaction,
    export_events,
    import_events,
)
from eventkeep.urls import redact

__all__ = ["FileImport", "export_file", "import_file"]


def export_file(
    store: EventStore,
    out: IO[bytes],
    *,
    after: int | None = None,
    stream_prefix: str | None = None,
    progress: Callable[[int], object] | None = None,
    with_keys: bool = False,
) -> int:
    """Write the export of ``store`` (events after ``after``, of streams starting with
    ``stream_prefix``) to ``out``; returns how many events it holds. ``progress(done)`` is
    called every 1,000 events. ``with_keys``: also the keys of the personal data the events
    hold (whoever has the file can then read it; without them it imports redacted). A
    partial export (``after``, ``stream_prefix``) carries no side records, keys included."""
    header = ExportHeader(
        source=redact(store.url),
        exported_at=datetime.now(UTC),
        head_position=store.head_position(),
        after=after or 0,
        stream_prefix=stream_prefix or None,
    )
    rows = export_events(store, after=after, stream_prefix=stream_prefix)
    if progress is not None:
        rows = _counted(rows, progress)
    whole = not after and not stream_prefix
    side = side_records(store, secrets=with_keys) if whole else iter(())
    return write_export(out, header, rows, side)


def _counted(rows: Iterator[ChainRow], progress: Callable[[int], object]) -> Iterator[ChainRow]:
    for done, row in enumerate(rows, 1):
        if done % 1000 == 0:
            progress(done)
        yield row


class FileImport(NamedTuple):
    """What ``import_file`` did; ``complete``: the file ended with its end line; ``archives``:
    the archive files it copied (None: no directory of them was given)."""

    written: int
    skipped: int
    last_source_position: int
    complete: bool
    header: ExportHeader
    archives: ArchiveCopy | None = None


def import_file(
    store: EventStore,
    lines: Iterable[bytes],
    *,
    name: str = "the export",
    batch_size: int = 1000,
    on_batch: Progress | None = None,
    on_header: Callable[[ExportHeader], object] | None = None,
    archives: str | Path | None = None,
) -> FileImport:
    """Import an export file (``lines``: a binary file or its lines) into ``store``: its side
    records first, then its events, ``batch_size`` per transaction (see ``import_events``).
    ``on_header``: called with the file's header once it is read. ``archives``: a directory
    holding the archive files the export's operations name (the source's archive directory,
    or a copy of it): they are copied into the store's, each checked against its digest."""
    check_outside_transaction(store)
    reader = read_export(lines, name)
    if on_header is not None:
        on_header(reader.header)
    items = reader.items()
    side: list[SideRecord] = []
    first: list[ChainRow] = []
    for item in items:
        if isinstance(item, SideRecord):
            side.append(item)
            continue
        first.append(item)
        break
    import_side_records(store, side)
    taken = None if archives is None else take_archives(store, archives)
    carried = carried_operations((item.kind, item.record) for item in side)
    rows = itertools.chain(first, (item for item in items if isinstance(item, ChainRow)))
    report = import_events(store, rows, batch_size=batch_size, on_batch=on_batch, carried=carried)
    return FileImport(*report, reader.complete, reader.header, taken)
