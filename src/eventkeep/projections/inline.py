"""Inline projections: read models updated in the same transaction as the append.

::

    apply_inline(store, [AccountBalances()], [StreamAppend("bankaccount-1", [Deposited(...)])])

The append and the read-model change commit together, so a reader never sees one without the
other (strong consistency, at the cost of slower appends). An inline projection is updated only
this way: do not also give it to a runner.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from eventkeep.projections.checkpoints import ProjectionRecord, load_record, save_record
from eventkeep.projections.projection import HandlerContext, Projection
from eventkeep.store import AppendResult, EventStore, StreamAppend

__all__ = ["apply_inline"]


def apply_inline(
    store: EventStore, projections: Sequence[Projection], appends: Iterable[StreamAppend]
) -> list[AppendResult]:
    """Append (like ``append_many``) and feed the new events to ``projections``, atomically."""
    with store.transaction() as tx:
        results = tx.append_many(appends)
        for projection in projections:
            record = load_record(tx, projection.name)
            if record is None:
                record = ProjectionRecord(
                    name=projection.name,
                    version=projection.version,
                    tables=list(projection.tables),
                    state="inline",
                )
                ctx = HandlerContext(store, projection, tx, record.generation)
                projection.setup(ctx)
                projection.activate(ctx)
                save_record(tx, record)
            ctx = HandlerContext(store, projection, tx, record.generation)
            for result in results:
                first, last = result.versions[0], result.versions[-1]
                # Read inside the block: every backend reads this thread's open transaction
                # here (PostgreSQL through its connection), which holds the uncommitted events.
                for recorded in store.read_stream(result.stream_id, first, last):
                    ctx.recorded = recorded
                    projection.handle(recorded, ctx)
    return results
