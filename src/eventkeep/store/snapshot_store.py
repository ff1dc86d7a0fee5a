"""Snapshots of a stream's state, kept beside its events: a cache that may be deleted and
rebuilt at any time (see :mod:`eventkeep.domain.snapshots`). Mixed into
:class:`~eventkeep.store.base.EventStore`; a backend implements the three primitives at the end.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from eventkeep.errors import ValidationError
from eventkeep.store.types import Snapshot
from eventkeep.store.validation import (
    MAX_SCHEMA_VERSION,
    check_count,
    check_name,
    check_optional_count,
    check_stream_id,
    check_text,
)

__all__ = ["Snapshots"]


class Snapshots(abc.ABC):
    """Mixed into ``EventStore``: saving, loading and deleting snapshots."""

    if TYPE_CHECKING:  # EventStore's

        def _clock(self, floor: int = 0) -> int: ...

    def save_snapshot(
        self, stream_id: str, version: int, state_type: str, schema_version: int, data: bytes
    ) -> None:
        """Save a state snapshot of ``stream_id`` at ``version`` (replacing one at that version).

        Snapshots live beside the events in their own table; unlike events they are a cache
        and may be deleted and rebuilt at any time.
        """
        stream_id = check_stream_id(stream_id)
        check_count(version, what="version", minimum=1)
        check_count(schema_version, what="schema_version", minimum=1, maximum=MAX_SCHEMA_VERSION)
        if not isinstance(data, bytes):
            raise ValidationError(f"snapshot data must be bytes, got {type(data).__name__}")
        self._save_snapshot(
            Snapshot(
                stream_id,
                version,
                check_name(state_type, what="snapshot state type"),
                schema_version,
                data,
                self._clock(),
            )
        )

    def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        """The latest snapshot of ``stream_id`` at or below ``max_version``, if any."""
        stream_id = check_stream_id(stream_id)
        limit = check_optional_count(max_version, what="max_version")
        return self._load_snapshot(stream_id, 2**62 if limit is None else limit)

    def delete_snapshots(self, stream_prefix: str = "") -> int:
        """Delete the snapshots of streams starting with ``stream_prefix``; returns how many."""
        check_text(stream_prefix, what="stream_prefix")
        return self._delete_snapshots(stream_prefix)

    # -- backend primitives -------------------------------------------------------------------

    @abc.abstractmethod
    def _save_snapshot(self, snapshot: Snapshot) -> None: ...

    @abc.abstractmethod
    def _load_snapshot(self, stream_id: str, max_version: int) -> Snapshot | None: ...

    @abc.abstractmethod
    def _delete_snapshots(self, prefix: str) -> int: ...
