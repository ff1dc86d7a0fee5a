"""The stream lifecycle's side tables: what export, import and copy carry of it.

Two :class:`~eventkeep.moving.side.SideTable`\\ s (see docs/moving.md and docs/lifecycle.md):

- ``operation``: one record per operation of the log, with the removals it made
  (``{"operation": {...}, "removals": [{...}, ...]}``, hashes in hex). Imported through the
  store's ``_carry_operation`` (in one transaction: the operation written open, its removals,
  then closed, as the removal path writes them; nothing is deleted), then the heads of the
  streams whose events were all removed (``_carry_heads``), so that the events that follow
  chain on what the removals logged and new events are numbered above every removed position.
- ``stream_meta``: each stream's retention and tombstone, as it is.

Both import idempotently (an operation already there, identical, is skipped; a different one
under its id is refused). Archive files travel beside: :func:`copy_archives` (``copy``, when both
stores have an archive directory) and :func:`take_archives` (``import --archives DIR``), each
file checked against the digest its operation logged.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from eventkeep.errors import ConfigurationError, IntegrityError, ValidationError
from eventkeep.store.archives import file_digest
from eventkeep.store.base import EventStore
from eventkeep.store.lifecycle import (
    KINDS,
    Deletion,
    Operation,
    Removal,
    Retention,
    StreamMeta,
    check_retention,
    removed_through,
)
from eventkeep.store.validation import check_stream_id

__all__ = [
    "OPERATIONS",
    "STREAM_META",
    "ArchiveCopy",
    "carried_operations",
    "copy_archives",
    "take_archives",
]


class _Operations:
    """The ``operation`` side table."""

    kind = "operation"
    secret = False

    def export(self, source: EventStore) -> Iterator[dict[str, Any]]:
        by_op: dict[str, list[Removal]] = {}
        for removal in source._removals(None):
            by_op.setdefault(removal.operation_id, []).append(removal)
        for op in source._operations():
            removals = sorted(by_op.get(op.operation_id, []), key=lambda r: r.stream_id)
            yield {
                "operation": op._asdict(),
                "removals": [{**r._asdict(), "last_hash": r.last_hash.hex()} for r in removals],
            }

    def import_(self, target: EventStore, records: list[dict[str, Any]]) -> None:
        carried = [_operation(record) for record in records]
        here = {op.operation_id: op for op in target._operations()}
        ids = {op.operation_id for op, _ in carried}
        given = max(
            [target._last_event_position()]
            + [r.last_position for r in target._removals(None) if r.operation_id not in ids]
        )
        removed: list[Removal] = []
        for op, removals in carried:  # in the log's order: each stream's removals in turn
            removed.extend(removals)
            known = here.get(op.operation_id)
            if known is not None:
                if known != op:
                    raise IntegrityError(
                        f"operation {op.operation_id} is already in {target.url}'s operations "
                        f"log as another operation ({known.kind} at {known.recorded_at} us) "
                        f"than the imported one ({op.kind} at {op.recorded_at} us)"
                    )
                continue
            if removals and min(r.first_position for r in removals) <= given:
                raise ValidationError(
                    f"the imported operations log names positions {target.url} has given "
                    f"already (operation {op.operation_id}, {op.kind}, removed positions "
                    f"{op.first_position}-{op.last_position}; the store is at {given}): an "
                    "operations log is imported only into an empty store, or into a copy of "
                    "its source's log (import the events without it: an export --after 0 of "
                    "a --stream-prefix carries none)"
                )
            _check_follows(target, removals)
            target._carry_operation(op, removals)
        target._carry_heads(list(removed_through(removed).values()))


def _check_follows(target: EventStore, removals: list[Removal]) -> None:
    """Each removal must take up its stream where the target's history of it ends."""
    for removal in removals:
        before = removed_through(target._removals(removal.stream_id)).get(removal.stream_id)
        upto = max(target._stream_version(removal.stream_id), before.last_version if before else 0)
        if upto != removal.first_version - 1:
            raise IntegrityError(
                f"the imported operation {removal.operation_id} removed versions "
                f"{removal.first_version} to {removal.last_version} of stream "
                f"{removal.stream_id!r}, but {target.url} holds that stream up to version "
                f"{upto}: its history and the imported one differ (import into an empty store)"
            )


def _operation(record: dict[str, Any]) -> tuple[Operation, list[Removal]]:
    try:
        fields = dict(record["operation"])
        op = Operation(**{name: fields[name] for name in Operation._fields})
        removals = [
            Removal(**{**item, "last_hash": bytes.fromhex(item["last_hash"])})
            for item in record["removals"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationError(
            f"a malformed operation record ({exc!r:.80}): {record!r:.200}"
        ) from None
    _check_operation(op, removals)
    return op, removals


_ARCHIVE_NAME = re.compile(r"eventkeep-[a-z-]+-[0-9a-f-]{36}\.jsonl(\.gz)?")


def _check_operation(op: Operation, removals: list[Removal]) -> None:
    """An operation record as eventkeep writes them: known kind, closed, a plain archive file
    name (never a path), removals of its own."""
    wrong = None
    if op.kind not in KINDS:
        wrong = f"its kind {op.kind!r} is none of {', '.join(KINDS)}"
    elif op.state != "done":
        wrong = f"it is {op.state!r}, not 'done' (the source's verify reports it)"
    elif op.archive_file is not None and not _ARCHIVE_NAME.fullmatch(str(op.archive_file)):
        wrong = f"its archive file {op.archive_file!r} is not an archive's file name"
    elif any(r.operation_id != op.operation_id for r in removals):
        wrong = "it holds removals of another operation"
    elif sum(r.events for r in removals) != op.events:
        wrong = f"it removed {op.events} event(s), but its removals hold another number"
    if wrong is not None:
        raise ValidationError(f"operation record {op.operation_id!r} is refused: {wrong}")


class _StreamMeta:
    """The ``stream_meta`` side table."""

    kind = "stream_meta"
    secret = False

    def export(self, source: EventStore) -> Iterator[dict[str, Any]]:
        for stream_id, meta in source._stream_metas():
            retention = meta.retention or Retention()
            deletion = meta.deletion
            yield {
                "stream_id": stream_id,
                "retention": None if meta.retention is None else retention._asdict(),
                "deletion": None if deletion is None else deletion._asdict(),
            }

    def import_(self, target: EventStore, records: list[dict[str, Any]]) -> None:
        for record in records:
            stream_id, meta = _meta(record)
            if target._stream_meta(stream_id) != meta:
                target._save_stream_meta(stream_id, meta)


def _meta(record: dict[str, Any]) -> tuple[str, StreamMeta]:
    try:
        retention = record["retention"]
        deletion = record["deletion"]
        meta = StreamMeta(
            None if retention is None else check_retention(**retention),
            None if deletion is None else Deletion(**deletion),
        )
        return check_stream_id(record["stream_id"]), meta
    except (KeyError, TypeError) as exc:
        raise ValidationError(
            f"a malformed stream_meta record ({exc!r:.80}): {record!r:.200}"
        ) from None


OPERATIONS = _Operations()
STREAM_META = _StreamMeta()


def carried_operations(kinds_and_records: Iterable[tuple[str, dict[str, Any]]]) -> set[str]:
    """The ids of the operations among side records (``(kind, record)`` pairs)."""
    return {
        str(record["operation"]["operation_id"])
        for kind, record in kinds_and_records
        if kind == OPERATIONS.kind
    }


class ArchiveCopy(NamedTuple):
    """What :func:`copy_archives` / :func:`take_archives` did: files copied, files already
    there (same digest), and the names of files not found (the target's verify lists them)."""

    copied: int
    present: int
    missing: tuple[str, ...]


def copy_archives(source: EventStore, target: EventStore) -> ArchiveCopy | None:
    """Copy the archive files of the target's operations from the source's archive directory
    into the target's; None when either store has none (or the source's was never made)."""
    if source.archive_dir is None or target.archive_dir is None:
        return None
    if not source.archive_dir.is_dir():  # no operation of the source wrote one
        return None
    return take_archives(target, source.archive_dir)


def take_archives(target: EventStore, directory: str | Path) -> ArchiveCopy:
    """Copy the archive files the target's operations log names from ``directory`` into the
    target's archive directory, each checked against its logged digest (a file that does not
    match is refused: ``IntegrityError``, nothing of it copied)."""
    if target.archive_dir is None:
        raise ConfigurationError(
            f"{target.url} has no archive directory to copy archive files into: open it with "
            "archive_dir=... (or ?archive_dir=... in its URL)"
        )
    origin = Path(directory)
    if not origin.is_dir():
        raise ValidationError(f"{origin} is not a directory of archive files")
    copied = present = 0
    missing: list[str] = []
    for op in target._operations():
        if op.archive_file is None or op.archive_digest is None:
            continue
        destination = target.archive_dir / op.archive_file
        if file_digest(destination) == op.archive_digest:
            present += 1
            continue
        found = origin / op.archive_file
        digest = file_digest(found)
        if digest is None:
            missing.append(op.archive_file)
            continue
        if digest != op.archive_digest:
            raise IntegrityError(
                f"the archive file {found} has sha256 {digest}, but operation "
                f"{op.operation_id} logged {op.archive_digest}: it was changed after it was "
                "written; not copied"
            )
        _place(found, destination, op.archive_digest)
        copied += 1
    return ArchiveCopy(copied, present, tuple(missing))


def _place(found: Path, destination: Path, digest: str) -> None:
    """Copy ``found`` to ``destination`` (through a temporary name), with its .sha256 file."""
    try:
        destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = destination.with_name(f".{destination.name}.tmp")
        shutil.copyfile(found, temporary)
        temporary.chmod(0o600)
        temporary.replace(destination)
        sidecar = destination.with_name(f"{destination.name}.sha256")
        sidecar.write_text(f"{digest}  {destination.name}\n")
        sidecar.chmod(0o600)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot copy the archive file {found} to {destination}: {exc.strerror}"
        ) from exc
