"""The append planner: the one place that decides what an append does, for every backend.

:func:`plan_append` is a pure function of the prepared batches, the stored heads of their streams
and, when a backend looked them up, the stored identities of their event ids. It returns a
:class:`Plan`, never raising for an outcome a caller must act on:

- ``plan.needs_ids``: an expected version did not match, or a backend's insert was refused by
  the event-id index, and the stored event ids were not looked up. A retried append looks
  exactly like that, so the backend fetches the ids and plans again.
- ``plan.conflict``: an expected version did not match, and the append is no retry
  (a :class:`~eventkeep.errors.ConcurrencyError` to raise, with expected and actual versions);
  or the append's condition (:class:`~eventkeep.store.dcb.AppendCondition`) failed, and the
  append is no retry (an :class:`~eventkeep.errors.AppendConditionError`). The backend looks
  for the first event matching the condition's query after its position inside the section
  that serializes appends (SQLite's write lock, PostgreSQL's sequencer lock, the memory
  store's lock), and passes it as ``matched``: checked there, a condition cannot race.
- otherwise each batch is a replay (an earlier identical append: its original result) or a write
  (its rows, numbered after the stream's head and hash-chained, from :meth:`Plan.rows`).

A backend only fetches (heads, ids, the condition's first match) and writes (rows); the order
of the checks, the idempotency rules and the hash chain are decided here once. The one error
the planner raises is :class:`~eventkeep.errors.DuplicateEventIdError`: event ids reused for
different events, which no retry can fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from eventkeep.errors import AppendConditionError, ConcurrencyError
from eventkeep.store.dcb import AppendCondition
from eventkeep.store.hashing import GENESIS, chain_events
from eventkeep.store.types import (
    AppendResult,
    PreparedAppend,
    StoredIdentity,
    expected_matches,
    replayed_result,
)

__all__ = ["NEW_STREAM", "Head", "Plan", "PlannedRow", "PlannedWrite", "new_heads", "plan_append"]


class Head(NamedTuple):
    """A stream's stored head: its version, last hash and last event's time (microseconds)."""

    version: int
    last_hash: bytes
    last_recorded_at_us: int = 0


NEW_STREAM = Head(0, GENESIS, 0)
_new_tuple = tuple.__new__
"""The head of a stream that holds no events."""


class PlannedRow(NamedTuple):
    """One event to insert: everything but its global position, which the backend assigns."""

    stream_id: str
    version: int
    event_id: bytes
    type: str
    schema_version: int
    recorded_at_us: int
    data: bytes
    metadata: bytes
    hash: bytes
    tags: tuple[str, ...] = ()


class PlannedWrite(NamedTuple):
    """A batch to write after its stream's ``head``."""

    batch: PreparedAppend
    head: Head


class Plan(NamedTuple):
    """What an append does; see the module docstring."""

    outcomes: list[AppendResult | PlannedWrite]
    """Per batch, in order: the replayed result, or the write to do."""
    conflict: ConcurrencyError | None = None
    needs_ids: bool = False

    @property
    def writes(self) -> list[PlannedWrite]:
        return [step for step in self.outcomes if isinstance(step, PlannedWrite)]

    @property
    def event_count(self) -> int:
        """How many events the plan writes."""
        return sum(len(step.batch.events) for step in self.writes)

    def time_floor(self) -> int:
        """The latest event time among the heads written to: an append is never before it."""
        return max((step.head.last_recorded_at_us for step in self.writes), default=0)

    def rows(self, recorded_at_us: int) -> list[PlannedRow]:
        """The rows to insert, stamped ``recorded_at_us`` and chained to their streams' heads,
        in the order their global positions must follow."""
        rows: list[PlannedRow] = []
        for batch, head in self.writes:
            stream_id = batch.stream_id
            hashes = chain_events(
                head.last_hash, stream_id, head.version, batch.events, recorded_at_us
            )
            rows += [
                _new_tuple(  # PlannedRow(...) without its Python-level __new__: once per event
                    PlannedRow,
                    (
                        stream_id,
                        version,
                        ev.event_id,
                        ev.type,
                        ev.schema_version,
                        recorded_at_us,
                        ev.data,
                        ev.metadata,
                        digest,
                        ev.tags,
                    ),
                )
                for version, ev, digest in zip(
                    range(head.version + 1, head.version + len(hashes) + 1),
                    batch.events,
                    hashes,
                    strict=True,
                )
            ]
        return rows

    def results(self, first_position: int) -> list[AppendResult]:
        """Each batch's result, the written events numbered from ``first_position`` on in the
        order of :meth:`rows` (ignored when nothing is written)."""
        out: list[AppendResult] = []
        position = first_position
        for step in self.outcomes:
            if isinstance(step, AppendResult):
                out.append(step)
                continue
            count = len(step.batch.events)
            first = step.head.version + 1
            out.append(
                AppendResult(
                    step.batch.stream_id,
                    tuple(range(first, first + count)),
                    tuple(range(position, position + count)),
                )
            )
            position += count
        return out


def plan_append(
    batches: Sequence[PreparedAppend],
    heads: Mapping[str, Head],
    stored: Mapping[bytes, StoredIdentity] | None,
    condition: AppendCondition | None = None,
    matched: int | None = None,
) -> Plan:
    """Decide an append; see the module docstring.

    ``heads`` holds the stored head of every stream that exists (a missing one is new);
    ``stored`` the stored identities of the batches' event ids that exist, or None when the
    backend did not look them up (the cheap happy path: it plans again with them when the plan
    says ``needs_ids``, or when its insert is refused by the event-id index).
    ``matched``: the position of the first event matching ``condition``'s query after its
    ``after``, None when there is none (or no condition). A re-sent append finds its own
    events there: the replay check comes first, so it still returns its original result.
    """
    outcomes: list[AppendResult | PlannedWrite] = []
    for batch in batches:
        head = heads.get(batch.stream_id, NEW_STREAM)
        if stored:
            known = [stored[ev.event_id] for ev in batch.events if ev.event_id in stored]
            replay = replayed_result(batch, known)
            if replay is not None:
                outcomes.append(replay)
                continue
        if not expected_matches(batch.expected, head.version):
            if stored is None:
                return Plan(outcomes, needs_ids=True)
            error = ConcurrencyError(batch.stream_id, batch.expected, head.version)
            return Plan(outcomes, conflict=error)
        outcomes.append(PlannedWrite(batch, head))
    writes = any(isinstance(step, PlannedWrite) for step in outcomes)
    if condition is not None and matched is not None and writes:
        # Unless every batch is a replay (its own events match), the condition failed.
        if stored is None:
            return Plan(outcomes, needs_ids=True)
        query = condition.fail_if_events_match
        return Plan(outcomes, conflict=AppendConditionError(query, condition.after, matched))
    return Plan(outcomes)


def new_heads(rows: list[PlannedRow]) -> list[tuple[int, PlannedRow]]:
    """Each written stream's last row (its new head) with its offset in ``rows``, in the order
    the streams are written: what a backend upserts as the streams' heads."""
    last: dict[str, tuple[int, PlannedRow]] = {}
    for offset, row in enumerate(rows):
        last[row.stream_id] = (offset, row)
    return list(last.values())
