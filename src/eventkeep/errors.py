"""The whole exception tree of eventkeep, and nothing else.

    EventkeepError
    ├── ValidationError            bad input; nothing was stored
    │   └── EventTooLargeError     an encoded event above the size limit
    ├── SerializationError         a value that cannot be encoded, or stored data not decodable
    ├── ConcurrencyError           the expected version did not match the stream's actual version
    │   └── AppendConditionError   an event matching an append's condition was appended meanwhile
    ├── KeyConflictError           two appends made the first key of one data subject at once
    ├── CheckpointConflictError    another consumer moved a checkpoint (or holds its lease)
    ├── DuplicateEventIdError      an event id already stored for a different event
    ├── NotFoundError              a stream (or aggregate) that does not exist
    │   └── StreamDeletedError     a stream deleted by a logged lifecycle operation
    ├── IntegrityError             history tampered with, or a write refused as unsafe
    ├── BackendUnavailableError    the database could not be reached, or stayed locked too long
    ├── SchemaVersionError         the database was written by a newer eventkeep schema
    ├── ProjectionFailedError      a projection waited for is failed before the position
    ├── ConfigurationError         a bad store URL, a missing extra, a conflicting type registration
    └── AnchorError                an anchor that is malformed, or not signed by the given key

Every error raised by eventkeep is one of these; backends translate driver exceptions in
exactly one place each, with ``raise ... from exc`` so the cause stays visible.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AnchorError",
    "AppendConditionError",
    "BackendUnavailableError",
    "CheckpointConflictError",
    "ConcurrencyError",
    "ConfigurationError",
    "DuplicateEventIdError",
    "EventTooLargeError",
    "EventkeepError",
    "IntegrityError",
    "KeyConflictError",
    "NotFoundError",
    "ProjectionFailedError",
    "SchemaVersionError",
    "SerializationError",
    "StreamDeletedError",
    "ValidationError",
]


class EventkeepError(Exception):
    """Root of every error eventkeep raises.

    ``retryable``: repeating the same call may succeed (a lost race, a busy or restarting
    server). ``outcome_unknown``: a write failed in a way that leaves open whether it was
    stored (the connection was lost on the way); retrying it with the same event ids is safe.
    """

    retryable: bool = False
    outcome_unknown: bool = False


class ValidationError(EventkeepError, ValueError):
    """Bad input: the call was refused before anything was stored."""


class EventTooLargeError(ValidationError):
    """An encoded event is larger than the store's ``max_event_bytes``."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class SerializationError(EventkeepError):
    """A value could not be encoded to JSON, or stored bytes could not be decoded."""


class ConcurrencyError(EventkeepError):
    """The stream's actual version differs from the expected version; nothing was written.

    Retryable after reloading the stream (``Repository.execute`` does that).
    """

    retryable = True

    def __init__(self, stream_id: str, expected: Any, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r}: expected version {_describe(expected)}, actual version {actual}"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.stream_id, self.expected, self.actual))


class AppendConditionError(ConcurrencyError):
    """An event matching the append's condition (its query) was appended after the position
    the condition names: the decision was made on stale facts; nothing was written.

    Retryable after reading the query again (``execute_decision`` does that). ``position`` is
    the first matching event found after ``after``.
    """

    def __init__(self, query: Any, after: int | None, position: int) -> None:
        EventkeepError.__init__(
            self,
            f"append condition failed: an event matching {query!r} was appended after "
            f"position {after if after is not None else 0} (at position {position})",
        )
        self.stream_id = ""
        self.expected = after
        self.actual = position
        self.query = query
        self.after = after
        self.position = position

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.query, self.after, self.position))


class KeyConflictError(EventkeepError):
    """Two appends made the first key of the same data subject at once (docs/erasure.md),
    and this one lost: nothing was written. The store re-encrypts with the winner's key and
    retries by itself, so callers only see it if that keeps failing. Retryable."""

    retryable = True

    def __init__(self, subjects: Any) -> None:
        self.subjects = tuple(subjects)
        super().__init__(
            f"another append made the first key of data subject(s) {list(self.subjects)!r} "
            "at the same time; nothing was written"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.subjects,))


class CheckpointConflictError(EventkeepError):
    """A checkpoint was not at the expected position: another consumer moved it (or holds the
    projection's lease). The transaction that tried to move it was rolled back."""


class DuplicateEventIdError(EventkeepError):
    """An event id is already stored for a different event (or in another place)."""


class NotFoundError(EventkeepError, LookupError):
    """A stream or aggregate that does not exist."""


class StreamDeletedError(NotFoundError):
    """The stream was deleted (see docs/lifecycle.md): ``version`` is its version when deleted,
    ``operation_id`` the logged operation that did it, ``hard`` whether its events left the
    live tables, ``deleted_at`` when (microseconds since the epoch, UTC), ``by`` and ``reason``
    what the operation recorded. Appending to the stream revives it (reads then start after
    ``version``)."""

    def __init__(
        self,
        stream_id: str,
        version: int,
        operation_id: str,
        *,
        hard: bool = False,
        deleted_at: int = 0,
        by: str = "",
        reason: str = "",
    ) -> None:
        how = "hard-deleted" if hard else "deleted"
        why = f": {reason}" if reason else ""
        super().__init__(
            f"stream {stream_id!r} was {how} at version {version} by {by or 'unknown'} "
            f"(operation {operation_id}){why}"
        )
        self.stream_id = stream_id
        self.version = version
        self.operation_id = operation_id
        self.hard = hard
        self.deleted_at = deleted_at
        self.by = by
        self.reason = reason

    def __reduce__(self) -> Any:
        return (
            _deleted,
            (
                self.stream_id,
                self.version,
                self.operation_id,
                self.hard,
                self.deleted_at,
                self.by,
                self.reason,
            ),
        )


class IntegrityError(EventkeepError):
    """The store refused a write that would rewrite history, or found history tampered with."""


class BackendUnavailableError(EventkeepError):
    """The database could not be reached, or stayed locked longer than the timeout allows.

    ``retryable`` and ``outcome_unknown`` say what the caller can do (see ``EventkeepError``).
    """

    def __init__(
        self, message: str, *, retryable: bool = False, outcome_unknown: bool = False
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unavailable, (str(self), self.retryable, self.outcome_unknown))


class SchemaVersionError(EventkeepError):
    """The database schema is newer than this version of eventkeep understands."""


class ProjectionFailedError(EventkeepError):
    """A projection being waited for (``EventStore.wait_for_projection``) is failed before the
    position: it will not get there until an operator retries or skips (or a retry succeeds).
    ``name``, ``failing_position`` and ``error`` say where and why."""

    def __init__(
        self, message: str, name: str = "", failing_position: int | None = None, error: str = ""
    ) -> None:
        super().__init__(message)
        self.name = name
        self.failing_position = failing_position
        self.error = error

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.name, self.failing_position, self.error))


class ConfigurationError(EventkeepError):
    """A bad store URL, a missing optional dependency, or a conflicting registration."""


class AnchorError(EventkeepError):
    """An anchor (a signed statement of the store's history) that cannot be used: malformed,
    of an unknown format, signed with another key, or with a signature that does not match.

    A store that does not match a valid anchor is not this error: ``verify`` reports it.
    """


def _deleted(
    stream_id: str,
    version: int,
    operation_id: str,
    hard: bool,
    deleted_at: int,
    by: str,
    reason: str,
) -> StreamDeletedError:
    return StreamDeletedError(
        stream_id, version, operation_id, hard=hard, deleted_at=deleted_at, by=by, reason=reason
    )


def _unavailable(message: str, retryable: bool, outcome_unknown: bool) -> BackendUnavailableError:
    return BackendUnavailableError(message, retryable=retryable, outcome_unknown=outcome_unknown)


def _describe(expected: Any) -> str:
    name = getattr(expected, "name", None)
    return name if isinstance(name, str) else repr(expected)
