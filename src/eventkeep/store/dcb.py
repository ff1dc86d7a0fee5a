"""Dynamic Consistency Boundaries (https://dcb.events): tags, queries and append conditions.

A rule that spans entities ("a username is unique", "a course takes at most 30 students")
needs no shared aggregate: events carry **tags**, a decision reads the events matching a
**query**, and its append carries a **condition**: fail if any event matching the query was
appended after the position the decision read up to.

- :class:`QueryItem` ``(types=..., tags=...)``: an event matches when its type is one of the
  item's types (or the item names none) and it carries every one of the item's tags.
- :class:`Query` ``(items)``: matches when any item does; ``Query.all()`` matches everything.
- :class:`AppendCondition` ``(fail_if_events_match=query, after=position)``: ``after=None``
  means "fail if any matching event exists at all".
- :class:`QueryResult`: what ``store.read(query)`` returns, the matching events in log order
  and ``head``, the position to use as the condition's ``after``.

Tags are strings validated like stream ids (1 to 255 characters, no control characters, no
leading or trailing whitespace). An event gets them from ``NewEvent(event, tags=[...])``, and
a typed event class can declare them from its fields with ``__tags__``, a tuple of
``str.format`` templates naming the class's fields::

    class StudentSubscribed(eventkeep.Event):
        __tags__ = ("student:{student_id}", "course:{course_id}")
        student_id: str
        course_id: str

Both are merged; a stored event's tags are sorted and without repeats.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from eventkeep.errors import ValidationError
from eventkeep.store.events import Event
from eventkeep.store.recorded import RecordedEvent, decode_tags
from eventkeep.store.tags import MAX_TAGS, check_tag, encode_tags, event_tags, tag_list
from eventkeep.store.validation import check_count, check_name

__all__ = [
    "MAX_TAGS",
    "STREAMLESS_PREFIX",
    "AppendCondition",
    "Query",
    "QueryItem",
    "QueryResult",
    "check_tag",
    "decode_tags",
    "encode_tags",
    "event_tags",
]

STREAMLESS_PREFIX = "$dcb:"
"""Stream ids of ``append_events`` appends: ``$dcb:`` and the first event's id (one stream
per append). Other appends should not use stream ids starting with it."""


_SEQUENCES = (list, tuple)
_CHECKED_TYPES: set[str] = set()
"""Event type names already validated by a QueryItem (validation is pure: a name valid once
is valid always)."""
_MOST_CHECKED_TYPES = 10_000


class QueryItem:
    """Events of any of ``types`` (any type when empty) carrying all of ``tags``."""

    __slots__ = ("_type_set", "tags", "types")

    types: tuple[str, ...]
    tags: tuple[str, ...]

    def __init__(self, types: Iterable[str | type[Event]] = (), tags: Iterable[str] = ()) -> None:
        # Lists and tuples skip the abstract Iterable checks (a query is built per decision).
        if type(types) not in _SEQUENCES:
            if isinstance(types, str | bytes) or (
                isinstance(types, type) and issubclass(types, Event)
            ):
                raise ValidationError(
                    f"QueryItem types must be a list of type names or Event classes, got {types!r}"
                )
            if not isinstance(types, Iterable):
                raise ValidationError(f"QueryItem types must be a list, got {type(types).__name__}")
        names: list[str] = []
        for item in types:
            if type(item) is str and item in _CHECKED_TYPES:
                names.append(item)
            elif isinstance(item, str):
                names.append(check_name(item, what="event type name"))
                if len(_CHECKED_TYPES) < _MOST_CHECKED_TYPES:
                    _CHECKED_TYPES.add(item)
            elif isinstance(item, type) and issubclass(item, Event):
                names.extend((item.__event_type__, *item.__aliases__))
            else:
                raise ValidationError(
                    f"QueryItem types takes type names or Event classes, got {item!r}"
                )
        self.types = tuple(dict.fromkeys(names)) if len(names) > 1 else tuple(names)
        if type(tags) in _SEQUENCES:
            checked = tuple(check_tag(tag) for tag in tags)
        else:
            checked = tag_list(tags, "QueryItem tags")
        self.tags = tuple(sorted(set(checked))) if len(checked) > 1 else checked
        self._type_set = frozenset(self.types)

    def matches(self, type_name: str, tags: Iterable[str]) -> bool:
        if self._type_set and type_name not in self._type_set:
            return False
        if not self.tags:
            return True
        have = tags if isinstance(tags, set | frozenset) else set(tags)
        return all(tag in have for tag in self.tags)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QueryItem):
            return NotImplemented
        return self._type_set == other._type_set and self.tags == other.tags

    def __hash__(self) -> int:
        return hash((self._type_set, self.tags))

    def __repr__(self) -> str:
        return f"QueryItem(types={list(self.types)!r}, tags={list(self.tags)!r})"


class Query:
    """Events matching any of ``items``. ``Query.all()`` matches every event."""

    __slots__ = ("items",)

    items: tuple[QueryItem, ...]

    def __init__(self, items: Iterable[QueryItem]) -> None:
        if type(items) not in _SEQUENCES and (
            isinstance(items, QueryItem) or not isinstance(items, Iterable)
        ):
            raise ValidationError(f"Query takes a list of QueryItem, got {type(items).__name__}")
        listed = list(items)
        for item in listed:
            if not isinstance(item, QueryItem):
                raise ValidationError(f"Query takes QueryItem items, got {item!r:.80}")
        if not listed:
            raise ValidationError(
                "a Query needs at least one QueryItem (Query.all() matches every event)"
            )
        self.items = tuple(dict.fromkeys(listed))

    @classmethod
    def all(cls) -> Query:
        """The query every event matches."""
        return cls([QueryItem()])

    @property
    def matches_all(self) -> bool:
        return any(not item.types and not item.tags for item in self.items)

    def matches(self, type_name: str, tags: Iterable[str]) -> bool:
        have = frozenset(tags)
        return any(item.matches(type_name, have) for item in self.items)

    def index_walks(self) -> list[QueryItem]:
        """The items as SQL backends walk their indexes: an item without tags split into one
        item per type, so that each walks one index in position order (a list of types would
        make it walk the whole log). Same matches as the query."""
        walks: list[QueryItem] = []
        for item in self.items:
            if item.tags or len(item.types) <= 1:
                walks.append(item)
            else:
                walks.extend(QueryItem(types=[name]) for name in item.types)
        return list(dict.fromkeys(walks))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Query):
            return NotImplemented
        return set(self.items) == set(other.items)

    def __hash__(self) -> int:
        return hash(frozenset(self.items))

    def __repr__(self) -> str:
        return f"Query({list(self.items)!r})"


class AppendCondition(NamedTuple):
    """Fail the append if any event matching ``fail_if_events_match`` was appended after
    position ``after`` (None: if any such event exists at all)."""

    fail_if_events_match: Query
    after: int | None = None

    def checked(self) -> AppendCondition:
        """This condition, its parts validated (``ValidationError`` otherwise)."""
        if not isinstance(self.fail_if_events_match, Query):
            raise ValidationError(
                "AppendCondition.fail_if_events_match must be a Query, got "
                f"{type(self.fail_if_events_match).__name__}"
            )
        if self.after is not None:
            check_count(self.after, what="AppendCondition.after")
        return self


def check_condition(condition: Any) -> AppendCondition | None:
    if condition is None:
        return None
    if not isinstance(condition, AppendCondition):
        raise ValidationError(
            f"condition must be an AppendCondition, got {type(condition).__name__}"
        )
    return condition.checked()


def check_query(query: Any) -> Query:
    if not isinstance(query, Query):
        raise ValidationError(f"read takes a Query, got {type(query).__name__}")
    return query


class QueryResult:
    """The events matching a query, in log order, and ``head``: the position up to which the
    result is complete, to use as ``AppendCondition(query, after=result.head)``.

    Iterable, with ``len``; ``events`` is the list itself.
    """

    __slots__ = ("events", "head")

    def __init__(self, events: list[RecordedEvent], head: int) -> None:
        self.events = events
        self.head = head

    def __iter__(self) -> Iterator[RecordedEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __bool__(self) -> bool:
        return bool(self.events)

    def condition(self, query: Query) -> AppendCondition:
        """``AppendCondition(query, after=self.head)``."""
        return AppendCondition(query, self.head)

    def __repr__(self) -> str:
        return f"QueryResult({len(self.events)} events, head={self.head})"
