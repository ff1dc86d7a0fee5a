"""Subscriptions, projections and read models: the read side, fed from the global log.

- :class:`Subscription`: the log after a checkpoint, caught up then followed live, in batches.
- :class:`Projection`, :class:`SQLProjection`, :class:`Reactor` and :func:`handles`: what a
  runner feeds; SQL read models and reactors are exactly-once (their effects and checkpoint
  commit in one transaction), external read models at-least-once.
- :class:`Runner`: runs projections, one active runner per projection (leases), with failure
  handling, retries, and rebuilds by replay (blue/green for SQL tables).
- :func:`projection_status`, :func:`skip_event`, :func:`request_rebuild`,
  :func:`reset_projection`, :func:`retry_projection`, :func:`parked_events`,
  :func:`replay_parked`, :func:`discard_parked`: status and operator actions.
- :func:`apply_inline`: update projections in the same transaction as an append.

See docs/projections.md.
"""

from eventkeep.projections.checkpoints import (
    Parked,
    ProjectionStatus,
    discard_parked,
    parked_events,
    projection_status,
    replay_parked,
    request_rebuild,
    reset_projection,
    retry_projection,
    skip_event,
)
from eventkeep.projections.inline import apply_inline
from eventkeep.projections.job import RetryPolicy
from eventkeep.projections.projection import (
    HandlerContext,
    Projection,
    Reactor,
    SQLProjection,
    handles,
)
from eventkeep.projections.runner import Runner
from eventkeep.projections.subscription import END, START, Batch, Subscription

__all__ = [
    "END",
    "START",
    "Batch",
    "HandlerContext",
    "Parked",
    "Projection",
    "ProjectionStatus",
    "Reactor",
    "RetryPolicy",
    "Runner",
    "SQLProjection",
    "Subscription",
    "apply_inline",
    "discard_parked",
    "handles",
    "parked_events",
    "projection_status",
    "replay_parked",
    "request_rebuild",
    "reset_projection",
    "retry_projection",
    "skip_event",
]
