"""Moving history for asyncio code: ``eventkeep.moving``'s ``copy_store``, ``export_file`` and
``import_file`` with async stores, awaited.

Each runs the synchronous function (see docs/moving.md) on a store thread with the stores'
``EventStore`` underneath, so the files are read and written and both databases waited on off
the event loop; the results and errors are the synchronous function's. Callbacks
(``progress``, ``on_batch``, ``on_header``) are called on that thread: keep them short, and
hand anything for the loop over with ``loop.call_soon_threadsafe``. For a store's own events,
``await store.import_(other.export())`` takes one async store's export into another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from eventkeep import moving
from eventkeep.aio.store import AsyncEventStore
from eventkeep.errors import ConfigurationError
from eventkeep.moving import COPY_BATCH_SIZE, CopyReport, ExportHeader, FileImport
from eventkeep.store.transfer import Progress

__all__ = ["copy_store", "export_file", "import_file"]


async def copy_store(
    source: AsyncEventStore,
    target: AsyncEventStore,
    *,
    batch_size: int = COPY_BATCH_SIZE,
    on_batch: Progress | None = None,
) -> CopyReport:
    """See :func:`eventkeep.moving.copy_store`: every event of ``source`` into ``target``,
    one to one, resumable (run on one of ``target``'s threads)."""
    _check(source, "source")
    _check(target, "target")
    return await target._call(
        moving.copy_store, source.sync, target.sync, batch_size=batch_size, on_batch=on_batch
    )


async def export_file(
    store: AsyncEventStore,
    out: IO[bytes],
    *,
    after: int | None = None,
    stream_prefix: str | None = None,
    progress: Callable[[int], object] | None = None,
    with_keys: bool = False,
) -> int:
    """See :func:`eventkeep.moving.export_file`: the export of ``store`` written to ``out``
    (on one of the store's threads); returns how many events it holds."""
    _check(store, "store")
    return await store._call(
        moving.export_file,
        store.sync,
        out,
        after=after,
        stream_prefix=stream_prefix,
        progress=progress,
        with_keys=with_keys,
    )


async def import_file(
    store: AsyncEventStore,
    lines: Iterable[bytes],
    *,
    name: str = "the export",
    batch_size: int = 1000,
    on_batch: Progress | None = None,
    on_header: Callable[[ExportHeader], object] | None = None,
    archives: str | Path | None = None,
) -> FileImport:
    """See :func:`eventkeep.moving.import_file`: an export file (a binary file or its lines,
    read on one of the store's threads) imported into ``store``."""
    _check(store, "store")
    return await store._call(
        moving.import_file,
        store.sync,
        lines,
        name=name,
        batch_size=batch_size,
        on_batch=on_batch,
        on_header=on_header,
        archives=archives,
    )


def _check(store: object, what: str) -> None:
    if not isinstance(store, AsyncEventStore):
        raise ConfigurationError(
            f"eventkeep.aio.moving takes AsyncEventStores ({what} is {store!r:.80}); use "
            "eventkeep.moving with an EventStore"
        )
