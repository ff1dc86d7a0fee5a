"""Forgotten subjects reach the read models: the runner calls each projection's ``forgotten``
hook once per entry of the store's forget log (see docs/erasure.md).

A projection's record keeps ``forgotten_seq``, the forget log entry up to which its hook has
run, and ``built_seq``, the last entry when its read model was (re)built: the subjects after it
are what ``projections status`` lists as forgotten since the last rebuild. A new projection
starts at the log's end (its read model is built from events that already read as redacted).
"""

from __future__ import annotations

import time
from typing import Protocol

from eventkeep.projections.checkpoints import ProjectionRecord, save_record
from eventkeep.projections.projection import HandlerContext, Projection
from eventkeep.store import EventStore
from eventkeep.store.base import Transaction

__all__ = ["FORGET_POLL", "forget_log_end", "run_forget_hooks"]

FORGET_POLL = 1.0
"""Seconds between a running projection's looks at the forget log."""


def forget_log_end(store: EventStore | Transaction) -> int:
    """The ``seq`` of the forget log's last entry (0 when nothing was ever forgotten)."""
    target = store.store if isinstance(store, Transaction) else store
    entries = target.forgotten_subjects()
    return entries[-1].seq if entries else 0


class Job(Protocol):
    """What of a runner's job (:class:`eventkeep.projections.job.Job`) this module uses."""

    store: EventStore
    projection: Projection
    record: ProjectionRecord | None
    forgets_due: float

    def check_lease(self, tx: Transaction) -> ProjectionRecord: ...


def _generations(record: ProjectionRecord) -> list[int]:
    if record.rebuild_generation is not None:
        return [record.generation, record.rebuild_generation]
    return [record.generation]


def run_forget_hooks(job: Job) -> bool:
    """Call the job's ``forgotten`` hook for each forget it has not seen; True if any.

    A transactional projection's hook runs in the transaction that records it as done:
    exactly once. A non-transactional one's runs before that transaction: at least once.
    """
    now = time.monotonic()
    if now < job.forgets_due:
        return False
    job.forgets_due = now + FORGET_POLL
    record = job.record
    assert record is not None
    store, projection = job.store, job.projection
    entries = store.forgotten_subjects(record.forgotten_seq)
    if not entries:
        return False
    hook = projection.erases()
    if hook and not projection.transactional:
        for entry in entries:
            for generation in _generations(record):
                ctx = HandlerContext(store, projection, None, generation)
                projection.forgotten(entry.subject, ctx)
    with store.transaction() as tx:
        record = job.check_lease(tx)
        for entry in entries:
            if hook and projection.transactional and entry.seq > record.forgotten_seq:
                for generation in _generations(record):
                    projection.forgotten(
                        entry.subject, HandlerContext(store, projection, tx, generation)
                    )
        record.forgotten_seq = max(record.forgotten_seq, entries[-1].seq)
        save_record(tx, record)
    job.record = record
    return True
