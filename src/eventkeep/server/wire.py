"""What goes over the wire: request bodies (checked by msgspec) and the JSON of events."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from eventkeep.errors import ValidationError
from eventkeep.store import ANY, NO_STREAM, STREAM_EXISTS
from eventkeep.store.dcb import AppendCondition, Query, QueryItem
from eventkeep.store.events import NewEvent, RawEvent
from eventkeep.store.recorded import RecordedEvent
from eventkeep.store.types import AppendResult, Expected

__all__ = [
    "AppendBody",
    "ConditionBody",
    "EventBody",
    "QueryBody",
    "QueryItemBody",
    "SkipBody",
    "TokenBody",
    "VerifyBody",
    "decode_body",
    "event_json",
    "expected_version",
    "new_events",
    "query_of",
    "result_json",
]

MAX_LIMIT = 1000
"""The most events one read returns (pass ``after`` to page on)."""


class EventBody(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any] | None = None
    event_id: uuid.UUID | None = None
    tags: list[str] | None = None
    schema_version: int = 1


class AppendBody(msgspec.Struct, forbid_unknown_fields=True):
    events: list[EventBody]
    expected_version: int | str | None = None


class QueryItemBody(msgspec.Struct, forbid_unknown_fields=True):
    types: list[str] = msgspec.field(default_factory=list)
    tags: list[str] = msgspec.field(default_factory=list)


class QueryBody(msgspec.Struct, forbid_unknown_fields=True):
    items: list[QueryItemBody]
    after: int | None = None
    limit: int | None = None


class ConditionBody(msgspec.Struct, forbid_unknown_fields=True):
    items: list[QueryItemBody]
    after: int | None = None


class StreamlessAppendBody(msgspec.Struct, forbid_unknown_fields=True):
    events: list[EventBody]
    condition: ConditionBody | None = None


class SkipBody(msgspec.Struct, forbid_unknown_fields=True):
    position: int
    reason: str


class VerifyBody(msgspec.Struct, forbid_unknown_fields=True):
    deep: bool = True


class TokenBody(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    scope: str
    prefixes: list[str] = msgspec.field(default_factory=list)
    rate_limit: float | None = None


def decode_body(raw: bytes, kind: type[Any]) -> Any:
    """The request body as ``kind``; a ``ValidationError`` saying what is wrong otherwise."""
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"request body: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ValidationError(f"request body is not valid JSON: {exc}") from exc


_NAMED: dict[str, Expected] = {
    "any": ANY,
    "no_stream": NO_STREAM,
    "stream_exists": STREAM_EXISTS,
}


def expected_version(value: int | str | None, if_match: str | None) -> Expected:
    """The expected version of an append: the body's, else ``If-Match``'s, else ANY."""
    if value is not None and if_match is not None:
        raise ValidationError("give the expected version in the body or in If-Match, not both")
    if if_match is not None:
        text = if_match.strip()
        if text.startswith("W/"):
            raise ValidationError("If-Match takes a strong ETag (a stream version), not a weak one")
        text = text.strip('"')
        if text == "*":
            return STREAM_EXISTS
        if not text.isdigit() or len(text) > 18:
            raise ValidationError(
                f'If-Match must be a stream version ETag like "3", got {if_match!r:.60}'
            )
        return int(text)
    if value is None:
        return ANY
    if isinstance(value, str):
        if value not in _NAMED:
            raise ValidationError(
                'expected_version must be an int >= 0, "any", "no_stream" or '
                f'"stream_exists", got {value!r:.60}'
            )
        return _NAMED[value]
    if value < 0:
        raise ValidationError(f"expected_version must be >= 0, got {value}")
    return value


def new_events(events: list[EventBody]) -> list[NewEvent]:
    if not events:
        raise ValidationError("an append needs at least one event")
    return [
        NewEvent(
            RawEvent(ev.type, ev.data, ev.schema_version),
            event_id=ev.event_id,
            metadata=ev.metadata,
            tags=ev.tags,
        )
        for ev in events
    ]


def query_of(items: list[QueryItemBody]) -> Query:
    if not items:
        raise ValidationError("a query needs at least one item (an empty item matches all)")
    return Query([QueryItem(item.types, item.tags) for item in items])


def condition_of(body: ConditionBody | None) -> AppendCondition | None:
    if body is None:
        return None
    return AppendCondition(query_of(body.items), body.after)


def event_json(recorded: RecordedEvent) -> dict[str, Any]:
    """A recorded event as JSON (the same shape as the CLI's ``--json``)."""
    return {
        "position": recorded.position,
        "stream_id": recorded.stream_id,
        "version": recorded.version,
        "type": recorded.type,
        "schema_version": recorded.schema_version,
        "event_id": str(recorded.event_id),
        "recorded_at": recorded.recorded_at.isoformat(),
        "data": msgspec.Raw(recorded.raw_data),
        "metadata": recorded.metadata,
        "tags": list(recorded.tags),
    }


def result_json(result: AppendResult) -> dict[str, Any]:
    return {
        "stream_id": result.stream_id,
        "versions": list(result.versions),
        "positions": list(result.positions),
        "version": result.version,
        "position": result.position,
    }
