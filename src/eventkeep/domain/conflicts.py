"""Opt-in conflict resolution: append our events after concurrent ones that do not conflict.

The standard answer to a ``ConcurrencyError`` is to reload and re-run the command
(:meth:`Repository.execute` does that). Some domains know better: when two people edit
different fields of one document at once, neither edit invalidates the other. A repository
given ``conflicts=rule`` then asks ``rule(ours, theirs)``, with our pending events and the events
appended since we loaded, and when it answers False appends ours after theirs as they are,
without re-running the command.

The rule sees every concurrent event; it must answer True whenever one of them could change the
decision our events were recorded on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from typing import cast

from eventkeep.errors import ConcurrencyError
from eventkeep.store import AppendResult, StreamAppend, Writer
from eventkeep.store.events import Event, NewEvent, RawEvent
from eventkeep.store.recorded import RecordedEvent

__all__ = ["MAX_MERGE_ROUNDS", "ConflictCheck", "conflicts_by_key", "merge_append"]

logger = logging.getLogger("eventkeep.repository")

ConflictCheck = Callable[[Sequence[Event], Sequence[RecordedEvent]], bool]
"""``rule(ours, theirs) -> bool``: True when our pending events truly conflict with theirs."""

MAX_MERGE_ROUNDS = 10
"""How many times a save re-reads and re-appends before it gives up with the ConcurrencyError."""


def conflicts_by_key(key: Callable[[Event | RawEvent], Hashable]) -> ConflictCheck:
    """A rule: ours and theirs conflict when some event of each has the same ``key``.

    ``conflicts_by_key(type)`` lets different kinds of change pass each other (a title edit and
    a description edit) while two edits of the same kind conflict.
    """

    def check(ours: Sequence[Event], theirs: Sequence[RecordedEvent]) -> bool:
        mine = {key(event) for event in ours}
        return any(key(recorded.event) in mine for recorded in theirs)

    return check


def _event_of(item: Event | RawEvent | NewEvent) -> Event:
    return cast(Event, item.event if isinstance(item, NewEvent) else item)


def merge_append(
    store: Writer,
    appends: list[StreamAppend],
    error: ConcurrencyError,
    conflicts: ConflictCheck,
    mergeable: set[int],
) -> tuple[list[AppendResult], set[int]]:
    """Retry a refused multi-stream append, moving each non-conflicting stream's events after
    the concurrent ones; returns the results and the indexes of the appends that moved.

    Only the appends at the ``mergeable`` indexes may move (the rule knows their events).
    Re-raises the ConcurrencyError when the rule finds a conflict or after
    :data:`MAX_MERGE_ROUNDS` rounds of further concurrent writes.
    """
    merged: set[int] = set()
    for _ in range(MAX_MERGE_ROUNDS):
        index = next((i for i, a in enumerate(appends) if a.stream_id == error.stream_id), None)
        if index is None or index not in mergeable:
            raise error
        item = appends[index]
        expected = item.expected_version
        if not isinstance(expected, int):
            raise error
        theirs = list(store.read_stream(item.stream_id, expected + 1))
        ours = [_event_of(pending) for pending in item.events]
        if not theirs or conflicts(ours, theirs):
            raise error
        logger.debug(
            "%s: %d concurrent events do not conflict with ours; appending after version %d",
            item.stream_id,
            len(theirs),
            theirs[-1].version,
        )
        appends[index] = item._replace(expected_version=theirs[-1].version)
        merged.add(index)
        try:
            return store.append_many(appends), merged
        except ConcurrencyError as again:
            error = again
    raise error
