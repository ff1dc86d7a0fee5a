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
``eventkeep.snapshots`` logger and the next save tries again.
"""

from __future__ import annotations

import logging
import typing
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import msgspec

from eventkeep.errors import ConfigurationError
from eventkeep.validation import check_count

if TYPE_CHECKING:
    from eventkeep.aggregate import Aggregate
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


@runtime_checkable
class SnapshotPolicy(Protocol):
    """Decides whether an aggregate at ``version`` deserves a new snapshot."""

    def due(self, version: int, snapshot_version: int) -> bool:
        """True when a snapshot should be taken at ``version``; ``snapshot_version`` is the
        version of the snapshot the aggregate was restored from or last saved (0 if none)."""
        ...


class Every(NamedTuple):
    """Take a snapshot once ``events`` events have been added since the last one.

    A load then never replays more than ``events - 1`` events written through a repository
    (events appended behind its back are caught up on the next save or load).
    """

    events: int

    def due(self, version: int, snapshot_version: int) -> bool:
        return version - snapshot_version >= self.events


def as_policy(value: object, *, what: str) -> SnapshotPolicy | None:
    """``None``, an int N (meaning ``Every(N)``) or a policy object, checked."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return Every(check_count(value, what=what, minimum=1))
    if isinstance(value, SnapshotPolicy):
        return value
    raise ConfigurationError(
        f"{what} must be None, an int >= 1 or an object with a due(version, snapshot_version) "
        f"method, got {value!r}"
    )


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


def state_struct(cls: type[Aggregate]) -> type[msgspec.Struct]:
    """A msgspec struct mirroring the state fields declared on a class-based aggregate.

    Fields without a class-level default may be absent from a snapshot (never set yet).
    """
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # an annotation that cannot be resolved, of any kind
        raise ConfigurationError(
            f"{cls.__qualname__}: cannot resolve the annotations of its state fields for "
            f"snapshots ({exc}); define the types at module level"
        ) from exc
    fields: list[tuple[str, Any, Any]] = []
    for name in cls.__state_fields__:
        default = getattr(cls, name, msgspec.UNSET)
        hint = hints[name]
        fields.append((name, hint if default is not msgspec.UNSET else _or_unset(hint), default))
    return msgspec.defstruct(f"{cls.__name__}State", fields, kw_only=True)


def _or_unset(hint: Any) -> Any:
    return typing.Union[hint, msgspec.UnsetType]  # noqa: UP007 - hint may be any typing form


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
