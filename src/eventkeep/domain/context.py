"""The command context: correlation and causation ids for every event recorded under it.

::

    with eventkeep.command_context(correlation_id=request_id):
        accounts.execute("alice", lambda account: account.withdraw(Decimal("30")))

Every event an aggregate records inside the ``with`` block carries ``correlation_id`` and
``causation_id`` (and any extra keys given) in its metadata. The context lives in a
:class:`contextvars.ContextVar`, so it follows threads and asyncio tasks correctly and never
leaks from one request into another.

Nested contexts inherit what they do not set. A reaction to a stored event is best started with
``command_context(caused_by=recorded)``: the new events share the trigger's correlation id and
name the trigger as their cause.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from eventkeep.errors import ValidationError
from eventkeep.store.recorded import RecordedEvent

__all__ = ["CommandContext", "command_context", "current_context"]


class CommandContext(NamedTuple):
    """The ids (and extra metadata) stamped on every event recorded inside a command context."""

    correlation_id: str
    causation_id: str | None
    extra: Mapping[str, Any]

    def metadata(self) -> dict[str, Any]:
        """The metadata an event recorded under this context carries."""
        meta: dict[str, Any] = dict(self.extra)
        meta["correlation_id"] = self.correlation_id
        if self.causation_id is not None:
            meta["causation_id"] = self.causation_id
        return meta


_current: contextvars.ContextVar[CommandContext | None] = contextvars.ContextVar(
    "eventkeep_command_context", default=None
)


def current_context() -> CommandContext | None:
    """The innermost active command context, or None outside any."""
    return _current.get()


@contextlib.contextmanager
def command_context(
    correlation_id: str | uuid.UUID | None = None,
    causation_id: str | uuid.UUID | None = None,
    *,
    caused_by: RecordedEvent | None = None,
    **extra: Any,
) -> Iterator[CommandContext]:
    """Stamp the events recorded inside the block with correlation and causation ids.

    ``correlation_id`` defaults to the enclosing context's, or to a new random id;
    ``causation_id`` defaults to the enclosing context's. ``caused_by=recorded`` sets both from a
    stored event: its correlation id (or its event id when it has none) and its event id. Extra
    keyword arguments become extra metadata keys (e.g. ``user="alice"``).
    """
    outer = _current.get()
    if caused_by is not None:
        if not isinstance(caused_by, RecordedEvent):
            raise ValidationError(f"caused_by takes a RecordedEvent, got {caused_by!r:.80}")
        if causation_id is None:
            causation_id = caused_by.event_id
        if correlation_id is None:
            correlation_id = caused_by.correlation_id or caused_by.event_id
    if correlation_id is None:
        correlation_id = outer.correlation_id if outer is not None else uuid.uuid4()
    if causation_id is None and outer is not None:
        causation_id = outer.causation_id
    merged = {**outer.extra, **extra} if outer is not None else extra
    context = CommandContext(
        _id(correlation_id, "correlation_id"),
        None if causation_id is None else _id(causation_id, "causation_id"),
        merged,
    )
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def _id(value: Any, what: str) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise ValidationError(f"{what} must be a non-empty str or a UUID, got {value!r}")
