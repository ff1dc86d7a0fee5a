"""Tags of events (see :mod:`eventkeep.store.dcb`): validated like stream ids, sorted, without
repeats, from ``NewEvent(tags=...)`` and an event class's ``__tags__`` templates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from eventkeep.errors import ValidationError
from eventkeep.store.events import Event, NewEvent
from eventkeep.store.validation import check_name

__all__ = ["MAX_TAGS", "check_tag", "encode_tags", "event_tags", "tag_list"]

MAX_TAGS = 100
"""Most tags one event may carry."""

_encode = msgspec.json.Encoder().encode


def check_tag(value: Any) -> str:
    """A tag, validated like a stream id."""
    return check_name(value, what="tag")


def tag_list(tags: Any, what: str) -> tuple[str, ...]:
    if isinstance(tags, str | bytes) or not isinstance(tags, Iterable):
        raise ValidationError(f"{what} must be a list of str, got {type(tags).__name__}")
    return tuple(check_tag(tag) for tag in tags)


def event_tags(item: Any) -> tuple[str, ...]:
    """The tags of an append item (an Event, RawEvent or NewEvent), sorted, without repeats:
    those of ``NewEvent(tags=...)`` and those the event class declares in ``__tags__``."""
    given: tuple[str, ...] = ()
    if type(item) is NewEvent:
        if item.tags is not None:
            given = tag_list(item.tags, "NewEvent tags")
        item = item.event
    templates: tuple[str, ...] = getattr(type(item), "__tags__", ())
    if templates and isinstance(item, Event):
        fields = _Fields(item)
        given += tuple(check_tag(template.format_map(fields)) for template in templates)
    if not given:
        return ()
    tags = tuple(sorted(set(given)))
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"an event carries at most {MAX_TAGS} tags, got {len(tags)}")
    return tags


class _Fields:
    """An event's fields by name, for ``str.format_map``."""

    __slots__ = ("_event",)

    def __init__(self, event: Event) -> None:
        self._event = event

    def __getitem__(self, name: str) -> Any:
        return getattr(self._event, name)


def encode_tags(tags: Sequence[str]) -> str | None:
    """Tags as stored beside the event: a JSON array, or None (NULL) when there are none."""
    return _encode(list(tags)).decode() if tags else None
