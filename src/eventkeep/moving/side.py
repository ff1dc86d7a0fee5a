"""Side records: tables besides the events that export, import and copy carry.

A part of eventkeep that keeps a table a copy of the store needs (keys of encrypted personal
data, a log of maintenance operations, ...) adds one :class:`SideTable` to
:data:`SIDE_TABLES`. Export then writes its records (as lines of its ``kind``, after the
header, before the events), import hands them back to it before it writes any event, and
``copy_store`` moves them the same way, source to target, before the events. Its ``import_``
must be idempotent: an import or copy run again (after an interruption) hands it the same
records again.

An export holding records of a kind this eventkeep does not know is refused, rather than
imported without them.

Tables run in the order of :data:`SIDE_TABLES`. One that writes state the events depend on
does so here, before them: the lifecycle's ``operation`` table writes the removals and the
heads the following events chain on, and ``copy_store`` / ``import_file`` then tell
``import_events`` which operations came along (``carried``), so events keep their source
positions between the removed ones.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any, Protocol

from eventkeep.errors import ValidationError
from eventkeep.moving.erasure import FORGOTTEN, KEYS
from eventkeep.moving.jsonl import SideRecord
from eventkeep.moving.lifecycle import OPERATIONS, STREAM_META
from eventkeep.store.base import EventStore

__all__ = ["SIDE_TABLES", "SideTable", "copy_side_records", "import_side_records", "side_records"]


class SideTable(Protocol):
    """A table carried beside the events (see the module docstring)."""

    kind: str
    """The ``kind`` of its lines in an export (not ``header``, ``event`` or ``end``)."""

    secret: bool
    """Records that give access to protected data (keys): copied, but exported only when
    asked (``side_records(source, secrets=True)``)."""

    def export(self, source: EventStore) -> Iterable[dict[str, Any]]:
        """Its records in ``source``, as JSON-ready mappings (bytes as hex or base64)."""
        ...

    def import_(self, target: EventStore, records: list[dict[str, Any]]) -> None:
        """Write ``records`` into ``target``; records already there are left as they are."""
        ...


SIDE_TABLES: list[SideTable] = [OPERATIONS, STREAM_META, FORGOTTEN, KEYS]
"""Every table export, import and copy carry besides the events, in the order they are written:
the stream lifecycle's operations log (with its removals and the heads they leave) and its
stream metadata (:mod:`eventkeep.moving.lifecycle`); erasure's forget log, then the keys of
personal data (a secret; :mod:`eventkeep.moving.erasure`)."""


def side_records(source: EventStore, *, secrets: bool = False) -> Iterator[SideRecord]:
    """The side records of ``source``, table by table (secret tables only with ``secrets``)."""
    for table in SIDE_TABLES:
        if table.secret and not secrets:
            continue
        for record in table.export(source):
            yield SideRecord(table.kind, {k: v for k, v in record.items() if k != "kind"})


def import_side_records(target: EventStore, records: list[SideRecord]) -> None:
    """Hand the side records read from an export to their tables (an unknown kind: refused)."""
    tables = {table.kind: table for table in SIDE_TABLES}
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in records:
        if item.kind not in tables:
            raise ValidationError(
                f"the export holds records of kind {item.kind!r}, which this eventkeep does "
                "not know (written by a newer eventkeep?): upgrade eventkeep to import it"
            )
        record = {k: v for k, v in item.record.items() if k != "kind"}
        by_kind.setdefault(item.kind, []).append(record)
    for kind, kept in by_kind.items():
        tables[kind].import_(target, kept)


def copy_side_records(
    source: EventStore, target: EventStore, *, skip: Collection[SideTable] = ()
) -> None:
    """Move every side table's records (but those of ``skip``) from ``source`` to ``target``."""
    for table in SIDE_TABLES:
        if table in skip:
            continue
        records = [dict(record) for record in table.export(source)]
        if records:
            table.import_(target, records)
