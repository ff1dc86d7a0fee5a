"""Importing stored events: the one place that decides what an import writes, for every backend.

An import takes events as another store holds them (:class:`~eventkeep.store.hashing.ChainRow`:
ids, stream versions, positions, ``recorded_at``, data and metadata bytes, tags and hashes) and
writes them as they are. :func:`plan_import` is a pure function of one batch of such rows, the
target's heads of their streams, the target's stored events under their event ids, the time of
the target's last event and where the target's log stands (:class:`Numbering`). It returns the
rows to write, each with the position the target gives it, or raises, before anything is
written:

- an event keeps its position from the source when that is above every position the target
  has given (its last stored event, and the events its own lifecycle operations removed); so an
  import into an empty store, or a copy, keeps every position, gaps included (events the source
  removed). Removals the import carries itself (the source's operations log, a side record)
  do not count: the source's events never stood at the positions they name. An event whose
  position the target has already given is numbered after the target's head instead, as an
  append would be, and so are the events after it that would otherwise go backwards;

- an event already stored under its id, identical in every field but its position, is
  skipped (re-running an import is idempotent); the same id stored as anything else is a
  :class:`~eventkeep.errors.DuplicateEventIdError`;
- every other event must come next in its stream (its version one above the stream's head in
  the target, or the batch's previous event of the stream), and its hash must be the chain hash
  of its contents and that predecessor's hash: an event edited by hand, a missing one, or one
  whose stream holds another event at its version, is refused
  (:class:`~eventkeep.errors.IntegrityError`, or :class:`~eventkeep.errors.ValidationError`
  for versions missing in between);
- ``recorded_at`` never goes backwards along the target's log (a contract every backend keeps):
  an event older than the target's last one is refused (``ValidationError``).

A backend fetches (heads, identities, the last time) and writes, in one transaction per batch
that also serializes it with appends; it decides nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from eventkeep.errors import DuplicateEventIdError, IntegrityError, ValidationError
from eventkeep.store.hashing import GENESIS, ChainRow, chain_hash

__all__ = [
    "ImportPlan",
    "ImportReport",
    "Numbering",
    "Predictor",
    "TargetHead",
    "choose_plan",
    "plan_import",
    "same_event",
]


class TargetHead(NamedTuple):
    """A stream's head in the target: its version and its last event's hash."""

    version: int
    last_hash: bytes


class Numbering(NamedTuple):
    """Where the target's log stands for an import batch.

    ``head``: its head position (its last stored event, or the last event its lifecycle
    operations removed if that is higher: appends number above it). ``keep_above``: the
    position above which an imported event may keep its source position: the target's last
    stored event, or the last event removed by an operation the import does not carry, if
    higher (see the module docstring)."""

    head: int
    keep_above: int


class ImportReport(NamedTuple):
    """What an import did: events written, events skipped (already there, identical), and the
    position (in the source's log) of the last event it handled (0: none)."""

    written: int
    skipped: int
    last_source_position: int


def plan_import(
    rows: Sequence[ChainRow],
    heads: Mapping[str, TargetHead],
    stored: Mapping[bytes, ChainRow],
    last_recorded_at_us: int,
    numbering: Numbering,
) -> list[ChainRow]:
    """The rows of the batch to write, in order, with their positions in the target (the
    others are stored already); raises if any row cannot be written. ``stored``: the target's
    events under the batch's event ids (those it has). See the module docstring."""
    tips: dict[str, TargetHead] = {}
    given, top = numbering.keep_above, max(numbering.head, numbering.keep_above)
    floor = last_recorded_at_us
    out: list[ChainRow] = []
    new = TargetHead(0, GENESIS)
    for row in rows:
        stream_id, version, _, event_id, type_name, schema_version, at, data, meta, digest, tags = (
            row
        )
        if stored:
            known = stored.get(event_id)
            if known is not None:
                if not same_event(known, row):
                    raise DuplicateEventIdError(
                        f"event id {_uuid(event_id)} is already stored as another event "
                        f"(stream {known.stream_id!r}, version {known.version}) than the "
                        f"imported one (stream {stream_id!r}, version {version}); nothing of "
                        "this batch was imported"
                    )
                continue
        head = tips.get(stream_id) or heads.get(stream_id) or new
        if version != head.version + 1:
            _refuse_version(row, head)
        expected = chain_hash(
            head.last_hash,
            stream_id,
            version,
            event_id,
            type_name,
            schema_version,
            at,
            data,
            meta,
            tags,
        )
        if expected != digest:
            raise IntegrityError(
                f"stream {stream_id!r}, version {version} (event {_uuid(event_id)}): its hash "
                "does not match its contents and its predecessor's hash: the export was "
                "edited or damaged; nothing of this batch was imported"
            )
        if at < floor:
            raise ValidationError(
                f"stream {stream_id!r}, version {version} (event {_uuid(event_id)}) was "
                f"recorded at {at} us, before the target's last event ({floor} us): an import "
                "keeps every recorded_at, and times never go back along a store's log (import "
                "into an empty store, or one whose events are older); nothing of this batch "
                "was imported"
            )
        floor = at
        tips[stream_id] = TargetHead(version, digest)
        position = row.position if row.position > given else top + 1
        given, top = position, max(top, position)
        out.append(row if position == row.position else row._replace(position=position))
    return out


class ImportPlan(NamedTuple):
    """A batch planned ahead, against a prediction of the target: what :func:`plan_import`
    returned for these inputs. Valid exactly when the target, read under the batch's lock,
    shows the same inputs (the heads of the batch's streams, its last event's time, its
    numbering) and holds none of the batch's event ids: ``plan_import`` is a pure function,
    so it would return the same rows again."""

    rows: list[ChainRow]
    heads: dict[str, TargetHead]
    """The heads assumed for the batch's streams (a stream missing here: assumed new)."""
    last_recorded_at_us: int
    numbering: Numbering


def choose_plan(
    rows: Sequence[ChainRow],
    heads: Mapping[str, TargetHead],
    stored: Mapping[bytes, ChainRow],
    last_recorded_at_us: int,
    numbering: Numbering,
    ahead: ImportPlan | None,
) -> list[ChainRow]:
    """``plan_import(rows, heads, stored, last_recorded_at_us, numbering)``, taken from the
    plan made ahead when that was made for these very inputs."""
    if (
        ahead is not None
        and not stored
        and ahead.numbering == numbering
        and ahead.last_recorded_at_us == last_recorded_at_us
        and all(heads.get(stream_id) == ahead.heads.get(stream_id) for stream_id in _streams(rows))
    ):
        return ahead.rows
    return plan_import(rows, heads, stored, last_recorded_at_us, numbering)


def _streams(rows: Sequence[ChainRow]) -> dict[str, None]:
    return dict.fromkeys(row.stream_id for row in rows)


class Predictor:
    """Plans a copy's batches ahead, off the writing thread (``copy_store`` runs it on the
    thread that reads the source), predicting the target after each batch from the batches
    before it: every event of a batch written at its planned position, as the plan says.

    It starts from what the target held when the copy began (``numbering``, the time of its
    last event) and assumes that a stream it has not seen yet is new in the target. A wrong
    prediction (a stream the target already had, an append to the target meanwhile, a batch
    that was not written as planned) costs nothing but the plan made ahead: the writer plans
    the batch again under its lock (:func:`choose_plan`). A batch whose plan raises gets no
    plan ahead: the writer raises the same error, where it belongs."""

    def __init__(self, numbering: Numbering, last_recorded_at_us: int, removed_floor: int) -> None:
        self._heads: dict[str, TargetHead] = {}
        self._numbering = numbering
        self._last = last_recorded_at_us
        self._floor = removed_floor

    def plan(self, rows: Sequence[ChainRow]) -> ImportPlan | None:
        heads = {s: h for s in _streams(rows) if (h := self._heads.get(s)) is not None}
        numbering, last = self._numbering, self._last
        try:
            planned = plan_import(rows, heads, {}, last, numbering)
        except (IntegrityError, ValidationError):
            planned = None
        if not planned:  # raised, or nothing to write: nothing predicted after it either
            self._heads.clear()
            self._numbering = Numbering(-1, -1)
            return None
        for row in planned:
            self._heads[row.stream_id] = TargetHead(row.version, row.hash)
        top = max(numbering.head, planned[-1].position)
        self._numbering = Numbering(top, max(planned[-1].position, self._floor))
        self._last = planned[-1].recorded_at_us
        return ImportPlan(planned, heads, last, numbering)


def _refuse_version(row: ChainRow, head: TargetHead) -> None:
    if row.version <= head.version:
        raise IntegrityError(
            f"stream {row.stream_id!r} already holds version {row.version} as another event "
            f"than the imported one (event {_uuid(row.event_id)}): the target's history and "
            "the imported one differ; nothing of this batch was imported"
        )
    raise ValidationError(
        f"stream {row.stream_id!r}: the imported event {_uuid(row.event_id)} is version "
        f"{row.version}, but the stream is at version {head.version} in the target: "
        f"versions {head.version + 1} to {row.version - 1} are missing (import an export "
        "that starts earlier); nothing of this batch was imported"
    )


def same_event(a: ChainRow, b: ChainRow) -> bool:
    """Whether two stored events are the same in every field but their positions."""
    return a._replace(position=0) == b._replace(position=0)


def _uuid(raw: bytes) -> str:
    return str(uuid.UUID(bytes=raw))
