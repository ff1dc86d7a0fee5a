"""Export and import of stored events, for every backend: the paging of ``export`` and the
batching and checks of ``import_``, over the backend primitives ``EventStore._export_page`` and
``EventStore._import_rows`` (see :mod:`eventkeep.store.importing` for what an import decides).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from eventkeep.errors import ConfigurationError, ValidationError
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
    "BulkLoader",
    "Progress",
    "Transfer",
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
    loader: BulkLoader | None = None,
) -> ImportReport:
    """Write ``batches`` of exported events in log order (each with the plan made ahead for
    it, if any: :class:`~eventkeep.store.importing.ImportPlan`), a transaction each; through
    ``loader`` when the store is being bulk loaded."""
    write = store._import_rows if loader is None else loader.import_rows
    written = skipped = last = 0
    for batch, ahead in batches:
        done = write(batch, floor, ahead)
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


class BulkLoader(Protocol):
    """A backend's faster way to fill an empty store (``copy_store`` into PostgreSQL: its
    secondary indexes built once at the end; :mod:`eventkeep.backends.postgres.bulk`).
    Batches go through :meth:`import_rows` as through ``EventStore._import_rows``, then
    :meth:`finish` makes the store whole again; :meth:`close` in any case. Interrupted before
    ``finish``, the store says so and the copy run again resumes the load."""

    def prepare(self, plan: ImportPlan) -> None:
        """Called on the copy's reading thread with each batch planned ahead: work that can
        be done before the batch's turn (encoding its rows)."""
        ...

    def import_rows(
        self, rows: list[ChainRow], removed_floor: int, ahead: ImportPlan | None
    ) -> int: ...

    def finish(self) -> None: ...

    def close(self) -> None: ...


class Transfer:
    """Mixed into :class:`~eventkeep.store.base.EventStore`: ``export`` and ``import_``, over
    the three primitives at the end (a backend that cannot move history keeps the defaults)."""

    if TYPE_CHECKING:  # EventStore's and LifecycleMixin's

        def _removals(self, stream_id: str | None) -> list[Removal]: ...

        def joined_transaction(self) -> object: ...

        def _notify_appended(self) -> None: ...

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

    # -- backend primitives -------------------------------------------------------------------

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

    def _bulk_load(self, source_url: str, start: bool) -> BulkLoader | None:
        """The bulk load this store is in the middle of (a copy was interrupted), resumed;
        else, when ``start``, a new one if the store can (it holds no event); else None: the
        copy imports batch by batch. Backends without a bulk mode: always None."""
        return None
