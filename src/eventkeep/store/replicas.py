"""What a store that reads from a replica tells about it: how far the replica is behind.

Only the PostgreSQL backend reads from replicas (``read_url=``, see ``docs/postgres.md``,
"How a deployment grows"); projection status and ``eventkeep projections status`` show the lag
of any store that does, through :class:`ReadsFromReplica`.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

__all__ = ["ReadsFromReplica", "ReplicaLag"]


class ReplicaLag(NamedTuple):
    """How far the replica that serves a store's reads is behind its primary, as measured now.

    ``positions_behind``: the primary's head position minus the replica's (events committed on
    the primary that readers of the replica do not see yet). ``bytes_behind``: WAL the replica
    has not replayed. ``seconds_behind``: since the last transaction the replica replayed was
    committed on the primary, 0 when it has replayed all the WAL it received (an idle primary
    is not lag). ``in_recovery`` is False when ``read_url`` names a server that is not a
    standby (then it is its own primary, and nothing is behind).
    """

    read_url: str
    primary_head: int
    replica_head: int
    positions_behind: int
    bytes_behind: int
    seconds_behind: float
    in_recovery: bool


@runtime_checkable
class ReadsFromReplica(Protocol):
    """A store whose reads may be served by a replica."""

    def replica_lag(self) -> ReplicaLag | None:
        """The replica's lag now, or None when the store reads from its primary only."""
        ...
