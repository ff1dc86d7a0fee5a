"""The SQLite store's reads: pages of a stream, of the log and of a query, the counts, and the
checks of ``verify`` (hash chains, the database file, the tag index) and the rows of an anchor,
each on one snapshot. :class:`~eventkeep.backends.sqlite.store.SQLiteStore` mixes in
:class:`SQLiteReads` and gives it ``_query`` and ``_snapshot`` (see its connection notes)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from eventkeep.backends.sqlite import dcb, lifecycle, sql
from eventkeep.store.anchors import AnchorHead, AnchorRow, AnchorSource
from eventkeep.store.codec import Codec
from eventkeep.store.dcb import Query
from eventkeep.store.hashing import ChainRow, StreamHead, VerifyReport, verify_chains
from eventkeep.store.lifecycle import chain_starts
from eventkeep.store.recorded import RecordedEvent, decode_tags
from eventkeep.store.types import StorageCheck, StoreStats, StreamInfo

__all__ = ["SQLiteReads"]

_record: Callable[..., RecordedEvent] = RecordedEvent


class SQLiteReads:
    """Mixed into ``SQLiteStore``: the read primitives of ``EventStore``."""

    codec: Codec

    if TYPE_CHECKING:  # SQLiteStore's

        def _query(
            self, statement: str, params: tuple[Any, ...] = (), *, page: bool = False
        ) -> list[Any]: ...

        def _snapshot(self) -> contextlib.AbstractContextManager[sqlite3.Cursor]: ...

    def _read_stream_page(
        self,
        stream_id: str,
        low: int,
        high: int | None,
        backwards: bool,
        limit: int,
        live: bool = False,
    ) -> list[RecordedEvent]:
        statement = sql.read_stream(backwards=backwards, live=live)
        top = high if high is not None else 2**62
        params = (stream_id, low, top, stream_id, limit) if live else (stream_id, low, top, limit)
        rows = self._query(statement, params, page=True)
        return _records(rows, self.codec)

    def _read_all_page(
        self, after: int, limit: int, types: tuple[str, ...] | None, prefix: str | None
    ) -> list[RecordedEvent]:
        where = ""
        params: list[Any] = [after]
        if types is not None:
            where += sql.WHERE_TYPES.format(marks=",".join("?" * len(types)))
            params.extend(types)
        if prefix is not None:
            where += sql.WHERE_PREFIX
            params.extend((prefix, len(prefix), prefix))
        params.append(limit)
        rows = self._query(sql.READ_ALL.format(where=where), tuple(params), page=True)
        return _records(rows, self.codec)

    def _read_query_page(self, query: Query, after: int, limit: int) -> list[RecordedEvent]:
        statement, params = dcb.read_page(query, after, limit)
        return _records(self._query(statement, tuple(params), page=True), self.codec)

    def _stream_version(self, stream_id: str) -> int:
        rows = self._query(sql.STREAM_VERSION, (stream_id,))
        return int(rows[0][0]) if rows else 0

    def _list_streams(self, prefix: str, limit: int | None) -> list[StreamInfo]:
        rows = self._query(
            sql.LIST_STREAMS, (prefix, len(prefix), prefix, -1 if limit is None else limit)
        )
        return [StreamInfo(*row) for row in rows]

    def _head_position(self) -> int:
        return int(self._query(sql.HEAD_POSITION)[0][0])

    def _stats(self) -> StoreStats:
        with self._snapshot() as cur:  # one snapshot for all the counts
            events = cur.execute(sql.COUNT_EVENTS).fetchall()[0][0]
            streams = cur.execute(sql.COUNT_STREAMS).fetchall()[0][0]
            head = cur.execute(sql.HEAD_POSITION).fetchall()[0][0]
            types = dict(cur.execute(sql.COUNT_BY_TYPE).fetchall())
        return StoreStats(events, streams, head, types)

    def _verify(self, progress: Callable[[int], object] | None = None) -> VerifyReport:
        with self._snapshot() as cur:  # heads and rows from one snapshot
            heads = {
                stream_id: StreamHead(version, position, bytes(digest))
                for stream_id, version, position, digest in cur.execute(sql.STREAM_HEADS)
            }
            removed = [lifecycle.removal_of(row) for row in cur.execute(lifecycle.REMOVALS)]
            rows = (_chain_row(row) for row in cur.execute(sql.CHAIN_ROWS))
            return verify_chains(rows, heads, chain_starts(removed), progress)

    def _check_storage(self) -> StorageCheck:
        with self._snapshot() as cur:
            found = [str(row[0]) for row in cur.execute(sql.INTEGRITY_CHECK)]
            missing, extra = cur.execute(sql.TAG_INDEX_DIFFERENCES).fetchall()[0]
        problems = [] if found == ["ok"] else [f"database file: {text}" for text in found]
        if missing or extra:
            problems.append(
                f"tag index: {missing} tags of stored events are missing from event_tags and "
                f"{extra} entries name no such tag of an event (queries and append conditions "
                "would be wrong)"
            )
        return StorageCheck(
            checked=(
                "the database file (PRAGMA integrity_check)",
                "the tag index against the events' tags",
            ),
            problems=tuple(problems),
        )

    @contextlib.contextmanager
    def _anchor_source(self) -> Iterator[AnchorSource]:
        with self._snapshot() as cur:
            yield _CursorSource(cur)


class _CursorSource:
    """Anchor rows read through one snapshot's cursor."""

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._cur = cur

    def head_position(self) -> int:
        return int(self._cur.execute(sql.HEAD_POSITION).fetchall()[0][0])

    def rows(self, after: int, upto: int) -> Iterator[AnchorRow]:
        for position, stream_id, version, digest in self._cur.execute(
            sql.ANCHOR_ROWS, (after, upto)
        ):
            yield AnchorRow(position, stream_id, version, bytes(digest))

    def heads(self, upto: int) -> Iterator[AnchorHead]:
        for stream_id, version, position, digest in self._cur.execute(sql.ANCHOR_HEADS, (upto,)):
            yield AnchorHead(stream_id, version, position, bytes(digest))


def _chain_row(row: Any) -> ChainRow:
    s, v, p, e, t, sv, r, d, m, h, tags = row
    return ChainRow(s, v, p, e, t, sv, r, d, m, h, decode_tags(tags))


def _records(rows: list[Any], codec: Codec) -> list[RecordedEvent]:
    """Rows of ``sql._RECORD`` columns as recorded events."""
    return [
        _record(s, v, p, e, t, sv, d, m, r, codec, tags)
        for s, v, p, e, t, sv, d, m, r, tags in rows
    ]
