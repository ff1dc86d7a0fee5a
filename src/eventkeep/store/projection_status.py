"""Projections' bookkeeping as a store shows it, for status views and read-your-writes:
``wait_for_projection`` and ``projection_state``, over the checkpoints and projection records
that runners keep (see :mod:`eventkeep.projections`). Mixed into
:class:`~eventkeep.store.base.EventStore`."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Protocol

import msgspec

from eventkeep.errors import ProjectionFailedError
from eventkeep.store.types import POLL_INTERVALS
from eventkeep.store.validation import check_count

__all__ = ["ProjectionStatus", "projection_reached"]


class _Bookkeeping(Protocol):
    """What ``projection_state`` reads in a transaction (a store ``Transaction``)."""

    def records(self) -> list[tuple[str, bytes]]: ...

    def checkpoints(self) -> dict[str, int]: ...


class ProjectionStatus:
    """Mixed into ``EventStore``: waiting for a projection, and its records and checkpoints."""

    if TYPE_CHECKING:  # EventStore's

        def transaction(self) -> contextlib.AbstractContextManager[_Bookkeeping]: ...

    def wait_for_projection(self, name: str, position: int, timeout: float | None = None) -> bool:
        """Block until projection ``name`` has handled the log up to ``position`` (read your
        writes: pass the position an append returned, then query the read model).

        True once its checkpoint is at ``position`` or beyond (at once if it already is);
        False after ``timeout`` seconds (None: as long as it takes); a projection that never
        ran is waited for. Raises ``ProjectionFailedError`` as soon as the projection is failed
        before ``position`` rather than waiting out the timeout. During a blue/green rebuild
        the live checkpoint stands still until the swap. Polls without locks a runner needs,
        every few milliseconds at first, then every 50 ms.
        """
        check_count(position, what="position")
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = POLL_INTERVALS[0]
        while True:
            if projection_reached(name, position, *self.projection_state()):
                return True
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            wait = pause if deadline is None else min(pause, deadline - now)
            time.sleep(max(0.0, wait))
            pause = min(pause * 2, 0.05)

    def projection_state(self) -> tuple[list[tuple[str, bytes]], dict[str, int]]:
        """Every projection record (name and opaque bytes, sorted by name) and every checkpoint
        (name to position), as one consistent view, for status displays. Backends read it
        without taking locks that runners need; this default reads it in a transaction."""
        with self.transaction() as tx:
            return tx.records(), tx.checkpoints()


def projection_reached(
    name: str, position: int, records: list[tuple[str, bytes]], checkpoints: dict[str, int]
) -> bool:
    """Whether projection ``name`` has handled the log up to ``position``, by its records and
    checkpoints (``projection_state``); raises ``ProjectionFailedError`` when it is failed
    before ``position``. What every ``wait_for_projection`` (sync and async) polls."""
    if checkpoints.get(name, 0) >= position:
        return True
    for record_name, data in records:
        if record_name != name:
            continue
        record = msgspec.json.decode(data)
        if isinstance(record, dict) and record.get("state") == "failed":
            failing = record.get("failing_position")
            error = str(record.get("error") or record.get("last_error") or "")
            raise ProjectionFailedError(
                f"projection {name!r} is failed at position {failing} ({error}), before "
                f"position {position}; see `eventkeep projections status {name}`",
                name,
                failing if isinstance(failing, int) else None,
                error,
            )
    return False
