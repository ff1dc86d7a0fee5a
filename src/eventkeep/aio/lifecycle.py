"""The life of data for asyncio code: ``EventStore``'s stream lifecycle, erasure and moving
methods, awaited. Mixed into :class:`~eventkeep.aio.AsyncEventStore`.

Each method is the synchronous store's own (same names, arguments, results and errors; see
docs/lifecycle.md, docs/erasure.md and docs/moving.md), run on one of the store's threads, so
archive files are written and keys destroyed off the event loop. Lifecycle operations and
imports run in transactions of their own: called inside ``async with store.transaction()``
they raise ``ValidationError``, as on the synchronous store.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from eventkeep.aio.events import Call, Rows
from eventkeep.errors import StreamDeletedError, ValidationError
from eventkeep.store.hashing import ChainRow
from eventkeep.store.importing import ImportReport
from eventkeep.store.lifecycle import Operation, Removal, Retention
from eventkeep.store.lifecycle_store import CompactReport
from eventkeep.store.shredding import ForgetReport, ForgottenSubject, KeyStore
from eventkeep.store.validation import check_count

if TYPE_CHECKING:
    from eventkeep.store import EventStore

__all__ = ["LifecycleMethods"]

T = TypeVar("T")


class LifecycleMethods:
    """Stream lifecycle, erasure and moving, awaited (see the module)."""

    if TYPE_CHECKING:  # what it uses of AsyncEventStore
        sync: EventStore

        def _caller(self) -> Call[Any]: ...

        async def _call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...

    # -- what the store is ---------------------------------------------------------------------

    @property
    def archive_dir(self) -> Path | None:
        """Where lifecycle operations write archive files (``EventStore.archive_dir``)."""
        return self.sync.archive_dir

    @property
    def key_store(self) -> KeyStore:
        """The store's key store (``EventStore.key_store``). Its methods are synchronous and
        do I/O: from a task, call them on a thread (``await asyncio.to_thread(...)``)."""
        return self.sync.key_store

    # -- deleting, retention, archives ---------------------------------------------------------

    async def delete_stream(
        self,
        stream_id: str,
        *,
        hard: bool = False,
        by: str = "",
        reason: str = "",
        compress: bool = True,
    ) -> Operation:
        """See ``EventStore.delete_stream``."""
        return await self._call(
            self.sync.delete_stream, stream_id, hard=hard, by=by, reason=reason, compress=compress
        )

    async def set_retention(
        self,
        stream_id: str,
        *,
        max_age: float | None = None,
        max_count: int | None = None,
        truncate_before: int | None = None,
    ) -> Retention:
        """See ``EventStore.set_retention``."""
        return await self._call(
            self.sync.set_retention,
            stream_id,
            max_age=max_age,
            max_count=max_count,
            truncate_before=truncate_before,
        )

    async def retention(self, stream_id: str) -> Retention | None:
        """See ``EventStore.retention``."""
        return await self._call(self.sync.retention, stream_id)

    async def compact(
        self,
        *,
        now: float | None = None,
        by: str = "",
        reason: str = "retention",
        compress: bool = True,
    ) -> CompactReport:
        """See ``EventStore.compact``."""
        return await self._call(self.sync.compact, now=now, by=by, reason=reason, compress=compress)

    async def truncate(
        self, stream_id: str, before_version: int, *, by: str = "", reason: str = ""
    ) -> Operation | None:
        """See ``EventStore.truncate``."""
        return await self._call(self.sync.truncate, stream_id, before_version, by=by, reason=reason)

    async def archive(
        self,
        stream_id: str | None = None,
        *,
        before_version: int | None = None,
        before_position: int | None = None,
        by: str = "",
        reason: str = "",
        compress: bool = True,
    ) -> Operation | None:
        """See ``EventStore.archive``."""
        return await self._call(
            self.sync.archive,
            stream_id,
            before_version=before_version,
            before_position=before_position,
            by=by,
            reason=reason,
            compress=compress,
        )

    # -- the operations log --------------------------------------------------------------------

    async def operations(self) -> list[Operation]:
        """See ``EventStore.operations``."""
        return await self._call(self.sync.operations)

    async def removals(self, stream_id: str | None = None) -> list[Removal]:
        """See ``EventStore.removals``."""
        return await self._call(self.sync.removals, stream_id)

    async def first_version(self, stream_id: str) -> int:
        """See ``EventStore.first_version``."""
        return await self._call(self.sync.first_version, stream_id)

    async def deletion(self, stream_id: str) -> StreamDeletedError | None:
        """See ``EventStore.deletion``."""
        return await self._call(self.sync.deletion, stream_id)

    # -- erasure -------------------------------------------------------------------------------

    async def forget(self, subject: str, *, by: str = "", reason: str = "") -> ForgetReport:
        """See ``EventStore.forget``."""
        return await self._call(self.sync.forget, subject, by=by, reason=reason)

    async def forgotten_subjects(self, after: int = 0) -> list[ForgottenSubject]:
        """See ``EventStore.forgotten_subjects``."""
        return await self._call(self.sync.forgotten_subjects, after)

    # -- export and import ---------------------------------------------------------------------

    def export(self, *, after: int | None = None, stream_prefix: str | None = None) -> Rows:
        """See ``EventStore.export``: ``async for row in store.export()``. Bad arguments
        raise at once, before anything is read."""
        rows = self.sync.export(after=after, stream_prefix=stream_prefix)
        return Rows(rows, self._caller())

    async def import_(
        self, rows: Iterable[ChainRow] | AsyncIterable[ChainRow], *, batch_size: int = 1000
    ) -> ImportReport:
        """See ``EventStore.import_``. ``rows`` may be an async iterable too (another async
        store's ``export()``): it is taken ``batch_size`` rows at a time on the loop, and each
        part imported on a store thread (a part is still written ``batch_size`` per
        transaction, and the log order is checked across parts)."""
        if not isinstance(rows, AsyncIterable):
            return await self._call(self.sync.import_, rows, batch_size=batch_size)
        size = check_count(batch_size, what="batch_size", minimum=1)
        written = skipped = last = 0
        async for part in _parts(rows, size):
            first = part[0]
            if isinstance(first, ChainRow) and first.position <= last:
                raise ValidationError(
                    f"the imported events must come in log order: position {first.position} "
                    f"follows position {last}"
                )
            report = await self._call(self.sync.import_, part, batch_size=size)
            written, skipped = written + report.written, skipped + report.skipped
            last = report.last_source_position
        if last == 0:  # nothing came: the store's own checks (a transaction open, say)
            return await self._call(self.sync.import_, [], batch_size=size)
        return ImportReport(written, skipped, last)


async def _parts(rows: AsyncIterable[T], size: int) -> AsyncIterator[list[T]]:
    """``rows`` in lists of ``size`` (the last one shorter)."""
    part: list[T] = []
    async for row in rows:
        part.append(row)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part
