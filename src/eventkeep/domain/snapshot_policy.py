"""When to take a snapshot (policies), and the shape of a class-based aggregate's state.

Kept apart from :mod:`eventkeep.domain.snapshots` (which turns aggregates into snapshots and
back) so that the aggregate module can use them without an import circle.
"""

from __future__ import annotations

import typing
from typing import Any, NamedTuple, Protocol, runtime_checkable

import msgspec

from eventkeep.errors import ConfigurationError
from eventkeep.store.validation import check_count

__all__ = ["Every", "SnapshotPolicy", "as_policy", "state_struct"]


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


def state_struct(cls: type[Any]) -> type[msgspec.Struct]:
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
