"""Stream lifecycle values: retention, deletion tombstones, and the operations log.

Every removal of stored events (a hard delete, a truncation, retention applied by ``compact``,
an ``archive``) is one :class:`Operation`: a row of the operations log written in the same
transaction as the removal, with one :class:`Removal` per stream it took a prefix of. The
append-only triggers let a DELETE through only for rows an *open* operation of the same
transaction covers (see the migrations), and the operation is closed before the commit.

A removal always takes a *prefix* of a stream (versions 1 to N, or what remained of them): the
hash chain of what stays then verifies from its first remaining event, chained to the logged
hash of the last removed one. This module is pure: no I/O, no store class.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from eventkeep.errors import ValidationError
from eventkeep.store.hashing import ChainRow, ChainStart
from eventkeep.store.validation import check_optional_count

__all__ = [
    "KINDS",
    "Deletion",
    "Operation",
    "Removal",
    "Retention",
    "Selection",
    "StreamMeta",
    "chain_starts",
    "check_retention",
    "new_operation_id",
    "removals_of",
    "removed_through",
]

KINDS = ("delete", "hard-delete", "truncate", "retention", "archive")
"""What an operation did: ``delete`` (a soft delete: a tombstone, nothing removed),
``hard-delete`` (a stream's events removed through an archive), ``truncate`` (a stream's
prefix removed on request), ``retention`` (removed by ``compact`` as a stream's retention
says), ``archive`` (a prefix of a stream or of the whole log moved to an archive file)."""


class Retention(NamedTuple):
    """How much of a stream to keep; ``compact`` removes the rest (through an archive).

    ``max_age``: seconds; events recorded longer ago go. ``max_count``: keep at most the last
    N events. ``truncate_before``: events before this version go. None: no limit of that kind.
    """

    max_age: float | None = None
    max_count: int | None = None
    truncate_before: int | None = None

    @property
    def empty(self) -> bool:
        return self.max_age is None and self.max_count is None and self.truncate_before is None


class Deletion(NamedTuple):
    """A stream's tombstone: deleted at ``version`` by operation ``operation_id``."""

    version: int
    operation_id: str
    hard: bool


class StreamMeta(NamedTuple):
    """A stream's lifecycle metadata: its retention, and its tombstone if it was deleted."""

    retention: Retention | None = None
    deletion: Deletion | None = None


class Operation(NamedTuple):
    """One row of the operations log (``eventkeep_operations``).

    ``recorded_at`` in microseconds since the epoch (UTC); ``first_position`` and
    ``last_position``: the lowest and highest position removed (None when nothing was);
    ``archive_file``: the archive's file name in the store's archive directory, and
    ``archive_digest`` the sha256 (hex) of its bytes; ``state``: ``open`` only inside the
    transaction that removes, ``done`` once committed.
    """

    operation_id: str
    kind: str
    stream_id: str | None
    state: str
    recorded_at: int
    by: str
    reason: str
    events: int
    first_position: int | None
    last_position: int | None
    archive_file: str | None
    archive_digest: str | None


class Removal(NamedTuple):
    """The prefix of one stream an operation removed: versions ``first_version`` to
    ``last_version``, and ``last_hash``, the hash of the last removed event, from which the
    rest of the stream's chain verifies."""

    operation_id: str
    stream_id: str
    first_version: int
    last_version: int
    first_position: int
    last_position: int
    events: int
    last_hash: bytes


class Selection(NamedTuple):
    """What a removal takes: the events of ``stream_id`` up to version ``through_version``, or
    (``stream_id`` None) every event up to position ``through_position``."""

    stream_id: str | None
    through_version: int = 0
    through_position: int = 0


def new_operation_id() -> str:
    return str(uuid.uuid4())


def check_retention(
    max_age: float | None, max_count: int | None, truncate_before: int | None
) -> Retention:
    if max_age is not None:
        if (
            isinstance(max_age, bool)
            or not isinstance(max_age, int | float)
            or not 0 < max_age < float("inf")
        ):
            raise ValidationError(f"max_age must be seconds > 0 (or None), got {max_age!r}")
        max_age = float(max_age)
    count = check_optional_count(max_count, what="max_count", minimum=0)
    before = check_optional_count(truncate_before, what="truncate_before", minimum=1)
    return Retention(max_age, count, before)


def removals_of(operation_id: str, rows: Sequence[ChainRow]) -> list[Removal]:
    """One removal per stream of ``rows`` (a prefix of each, in any order)."""
    by_stream: dict[str, list[ChainRow]] = {}
    for row in rows:
        by_stream.setdefault(row.stream_id, []).append(row)
    out: list[Removal] = []
    for stream_id in sorted(by_stream):
        taken = sorted(by_stream[stream_id], key=lambda row: row.version)
        first, last = taken[0], taken[-1]
        out.append(
            Removal(
                operation_id,
                stream_id,
                first.version,
                last.version,
                first.position,
                last.position,
                len(taken),
                last.hash,
            )
        )
    return out


def removed_through(removals: Iterable[Removal]) -> dict[str, Removal]:
    """Each stream's last removal (the one with the highest ``last_version``)."""
    last: dict[str, Removal] = {}
    for removal in removals:
        kept = last.get(removal.stream_id)
        if kept is None or removal.last_version > kept.last_version:
            last[removal.stream_id] = removal
    return last


def chain_starts(removals: Iterable[Removal]) -> dict[str, ChainStart]:
    """Where each stream's chain starts: after its last removed event."""
    return {
        stream_id: ChainStart(r.last_version, r.last_position, r.last_hash)
        for stream_id, r in removed_through(removals).items()
    }
