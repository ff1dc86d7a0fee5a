"""Snapshots: when to take them, and how an aggregate's state becomes bytes and back.

A snapshot is a cache of an aggregate's state at a stream version, stored beside the events
(its own table) so that a load replays only the events after it. It records the state's type
name and schema version: a snapshot whose type or version differs from the aggregate's current
ones is stale, is ignored (the aggregate is replayed from its events) and is written again.

The policy is per aggregate type: ``__snapshot_every__ = 100`` on a class, ``snapshot_every=100``
on a :class:`~eventkeep.Decider`, or ``Repository(..., snapshot_every=...)`` to override it. A
number N means :class:`Every` N events; any object with a ``due(version, snapshot_version)``
method is a policy too.

Snapshots are written after a successful save (and after a load that had to replay N events or
more). Writing one never fails the save that triggered it: a failure is logged on the
``eventkeep.domain.snapshots`` logger and the next save tries again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from eventkeep.domain.snapshot_policy import Every, SnapshotPolicy, as_policy
from eventkeep.errors import ConfigurationError

if TYPE_CHECKING:
    from eventkeep.domain.aggregate import Aggregate
    from eventkeep.store import Snapshot, Writer

__all__ = [
    "Every",
    "RebuildReport",
    "SnapshotPolicy",
    "as_policy",
    "decode_state",
    "encode_state",
    "try_save_snapshot",
]

logger = logging.getLogger("eventkeep.snapshots")


class RebuildReport(NamedTuple):
    """What :meth:`Repository.rebuild_snapshots` did."""

    category: str
    streams: int
    written: int
    deleted: int


# -- state <-> bytes ---------------------------------------------------------------------------


def encode_state(aggregate: Aggregate, store: Writer) -> bytes:
    """The aggregate's state as JSON bytes (raises ``ConfigurationError`` or
    ``SerializationError`` when it cannot be snapshotted)."""
    return store.codec.encode_json(aggregate._ek_state_value())


def decode_state(cls: type[Aggregate], snapshot: Snapshot) -> Any | None:
    """The state stored in ``snapshot``, or None when the snapshot is stale for ``cls``."""
    if snapshot.type != cls.__state_type__ or snapshot.schema_version != cls.__state_version__:
        logger.info(
            "ignoring stale snapshot of %s at version %d (%s v%d; current %s v%d)",
            snapshot.stream_id,
            snapshot.version,
            snapshot.type,
            snapshot.schema_version,
            cls.__state_type__,
            cls.__state_version__,
        )
        return None
    try:
        return _decoder(cls).decode(snapshot.data)
    except (msgspec.DecodeError, msgspec.ValidationError, ConfigurationError) as exc:
        logger.warning(
            "ignoring unreadable snapshot of %s at version %d: %s",
            snapshot.stream_id,
            snapshot.version,
            exc,
        )
        return None


_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _decoder(cls: type[Aggregate]) -> msgspec.json.Decoder[Any]:
    decoder = _decoders.get(cls)
    if decoder is None:
        decoder = _decoders[cls] = msgspec.json.Decoder(cls._ek_state_schema())
    return decoder


# -- writing -----------------------------------------------------------------------------------


def try_save_snapshot(store: Writer, stream_id: str, aggregate: Aggregate) -> bool:
    """Save a snapshot of ``aggregate`` at its version; log and return False on any failure.

    A snapshot is a cache: failing to write one must never fail the save that triggered it.
    """
    cls = type(aggregate)
    try:
        data = encode_state(aggregate, store)
        store.save_snapshot(
            stream_id, aggregate.version, cls.__state_type__, cls.__state_version__, data
        )
    except Exception:  # a cache write: any failure at all is only logged
        logger.warning(
            "could not save a snapshot of %s at version %d; loads replay more events until "
            "the next one is saved",
            stream_id,
            aggregate.version,
            exc_info=True,
        )
        return False
    aggregate._ek_snapshot_version = aggregate.version
    return True
