"""Export and import of stored events, for every backend: the paging of ``export`` and the
batching and checks of ``import_``, over the backend primitives ``EventStore._export_page`` and
``EventStore._import_rows`` (see :mod:`eventkeep.store.importing` for what an import decides).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, Protocol

from eventkeep.errors import ValidationError
from eventkeep.store.hashing import ChainRow
from eventkeep.store.importing import ImportPlan, ImportReport
from eventkeep.store.lifecycle import Removal
from eventkeep.store.types import PAGE_SIZE
from eventkeep.store.validation import (
    MAX_SCHEMA_VERSION,
    check_count,
    check_name,
    check_stream_id,
    check_text,
)

__all__ = [
    "Progress",
    "check_outside_transaction",
    "check_row",
    "export_events",
    "import_batches",
    "import_events",
    "removed_floor",
]

Progress = Callable[[ImportReport], object]
"""Called after each batch of an import with the totals so far."""


class EventStore(Protocol):
    """What export and import need of a store (an ``eventkeep.store.base.EventStore``, which
    imports this module)."""

    def _export_page(self, after: int, limit: int, prefix: str | None) -> list[ChainRow]: ...

    def _import_rows(
        self, rows: list[ChainRow], removed_floor: int = 0, ahead: ImportPlan | None = None
    ) -> int: ...

    def _removals(self, stream_id: str | None) -> list[Removal]: ...

    def joined_transaction(self) -> object: ...

    def _notify_appended(self) -> None: ...


def export_events(
    store: EventStore,
    *,
    after: int | None = None,
    stream_prefix: str | None = None,
    page_size: int = PAGE_SIZE,
) -> Iterator[ChainRow]:
    """The stored events after position ``after`` (of streams starting with ``stream_prefix``)
    in log order, exactly as stored: see :class:`~eventkeep.store.hashing.ChainRow`."""
    position = check_count(0 if after is None else after, what="after")
    if stream_prefix is not None:
        check_text(stream_prefix, what="stream_prefix")
    check_count(page_size, what="page_size", minimum=1)
    return _pages(store, position, stream_prefix or None, page_size)


def _pages(store: EventStore, after: int, prefix: str | None, size: int) -> Iterator[ChainRow]:
    while True:
        page = store._export_page(after, size, prefix)
        yield from page
        if len(page) < size:
            return
        after = page[-1].position


def import_events(
    store: EventStore,
    rows: Iterable[ChainRow],
    *,
    batch_size: int = 1000,
    on_batch: Progress | None = None,
    check: bool = True,
    carried: Collection[str] = (),
) -> ImportReport:
    """Write exported events into ``store`` as they are, ``batch_size`` per transaction.

    Each batch is written whole or not at all: an event whose hash does not match its chain,
    an event id stored as another event, a stream holding another event at a version, missing
    versions or a ``recorded_at`` before the store's last event raise (see
    :func:`eventkeep.store.importing.plan_import`) and leave that batch unwritten; the batches
    before it stay, and running the import again skips them. ``check``: validate every row's
    fields first (rows from another store's ``export`` need not be). ``carried``: the ids of
    the operations whose removals came with these events (the source's operations log, already
    imported): events keep their source positions between the ones those removals name.
    """
    check_count(batch_size, what="batch_size", minimum=1)
    check_outside_transaction(store)
    if isinstance(rows, ChainRow):
        raise ValidationError("import_ takes a list of exported events, got a single one")
    batches = ((batch, None) for batch in _batches(rows, batch_size, check))
    return import_batches(store, batches, removed_floor(store, carried), on_batch)


def _batches(rows: Iterable[ChainRow], size: int, check: bool) -> Iterator[list[ChainRow]]:
    last = 0
    batch: list[ChainRow] = []
    for row in rows:
        if check:
            row = check_row(row)
        if row.position <= last:
            raise ValidationError(
                f"the imported events must come in log order: position {row.position} "
                f"follows position {last}"
            )
        last = row.position
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def removed_floor(store: EventStore, carried: Collection[str]) -> int:
    """The last position removed from ``store`` by an operation not among ``carried``
    (:class:`~eventkeep.store.importing.Numbering`)."""
    kept = frozenset(carried)
    return max(
        (r.last_position for r in store._removals(None) if r.operation_id not in kept), default=0
    )


def import_batches(
    store: EventStore,
    batches: Iterable[tuple[list[ChainRow], ImportPlan | None]],
    floor: int,
    on_batch: Progress | None = None,
) -> ImportReport:
    """Write ``batches`` of exported events in log order (each with the plan made ahead for
    it, if any: :class:`~eventkeep.store.importing.ImportPlan`), a transaction each."""
    written = skipped = last = 0
    for batch, ahead in batches:
        done = store._import_rows(batch, floor, ahead)
        written, skipped, last = written + done, skipped + len(batch) - done, batch[-1].position
        if on_batch is not None:
            on_batch(ImportReport(written, skipped, last))
    if written:
        store._notify_appended()
    return ImportReport(written, skipped, last)


def check_outside_transaction(store: EventStore) -> None:
    """Refuse an import (or copy) into ``store`` from inside one of its transactions."""
    if store.joined_transaction() is not None:
        raise ValidationError(
            "import_ writes in transactions of its own; call it outside store.transaction()"
        )


def check_row(row: Any) -> ChainRow:
    """``row`` if it is a well-formed exported event, else ``ValidationError`` saying why."""
    if not isinstance(row, ChainRow):
        raise ValidationError(f"import_ takes exported events (ChainRow), got {row!r:.80}")
    check_stream_id(row.stream_id)
    check_count(row.version, what="version", minimum=1)
    check_count(row.position, what="position", minimum=1)
    _check_bytes(row.event_id, "event_id", 16)
    check_name(row.type, what="event type")
    check_count(row.schema_version, what="schema_version", minimum=1, maximum=MAX_SCHEMA_VERSION)
    check_count(row.recorded_at_us, what="recorded_at_us")
    for what, value in (("data", row.data), ("metadata", row.metadata)):
        if not isinstance(value, bytes):
            raise ValidationError(f"{what} must be bytes, got {type(value).__name__}")
        if not value.startswith(b"{"):
            raise ValidationError(f"{what} must be a JSON object, got {value[:40]!r}")
    _check_bytes(row.hash, "hash", 32)
    tags = row.tags
    if not isinstance(tags, tuple):
        raise ValidationError(f"tags must be a tuple of str, got {type(tags).__name__}")
    for tag in tags:
        check_name(tag, what="tag")
    if list(tags) != sorted(set(tags)):
        raise ValidationError(f"tags must be sorted and without repeats, got {list(tags)!r}")
    return row


def _check_bytes(value: Any, what: str, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise ValidationError(f"{what} must be {size} bytes, got {value!r:.80}")
