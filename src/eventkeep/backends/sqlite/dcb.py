"""Queries (:mod:`eventkeep.store.dcb`) as SQLite statements, each item served by an index.

An item with tags walks the ``event_tags`` primary key ``(tag, position)`` of its first tag,
in position order, its types checked in the same rows, and probes its other tags per event;
an item with types only walks ``events_by_type (type, position)``; an item with neither is
the log itself.
"""

from __future__ import annotations

import functools
from typing import Any

from eventkeep.store.dcb import Query, QueryItem

__all__ = ["first_match", "read_page"]

_E_RECORD = (
    "e.stream_id, e.version, e.position, e.event_id, e.type, e.schema_version, e.data, "
    "e.metadata, e.recorded_at, e.tags"
)
_RECORD = (
    "stream_id, version, position, event_id, type, schema_version, data, metadata, recorded_at, "
    "tags"
)


def _item(item: QueryItem, after: int) -> tuple[str, list[Any]]:
    """A SELECT of the positions matching ``item`` after ``after``, in position order (an
    item with types but no tags has one type, see ``Query.index_walks``)."""
    return _item_statement(len(item.tags), len(item.types)), _item_params(item, after)


@functools.lru_cache(maxsize=256)
def _item_statement(tags: int, types: int) -> str:
    """``_item``'s statement for an item of ``tags`` tags and ``types`` types (the text
    depends on nothing else: built once per shape)."""
    if tags:
        joins = "".join(
            f" JOIN event_tags AS t{n} ON t{n}.tag = ? AND t{n}.position = t0.position"
            for n in range(1, tags)
        )
        where_types = f" AND t0.type IN ({','.join('?' * types)})" if types else ""
        return (
            f"SELECT t0.position FROM event_tags AS t0{joins} "
            f"WHERE t0.tag = ? AND t0.position > ?{where_types} ORDER BY t0.position"
        )
    if types:
        return "SELECT position FROM events WHERE type = ? AND position > ? ORDER BY position"
    return "SELECT position FROM events WHERE position > ? ORDER BY position"


def _item_params(item: QueryItem, after: int) -> list[Any]:
    if item.tags:
        first, *others = item.tags
        return [*others, first, after, *item.types]
    if item.types:
        (name,) = item.types
        return [name, after]
    return [after]


def first_match(query: Query, after: int) -> tuple[str, list[Any]]:
    """A statement whose one row holds the first position matching ``query`` after ``after``
    (NULL when there is none): the append condition's check, one index probe per item."""
    walks = query.index_walks()
    params: list[Any] = []
    for item in walks:
        params.extend(_item_params(item, after))
    return _first_match_statement(tuple((len(i.tags), len(i.types)) for i in walks)), params


@functools.lru_cache(maxsize=256)
def _first_match_statement(shapes: tuple[tuple[int, int], ...]) -> str:
    parts = [f"SELECT ({_item_statement(*shape)} LIMIT 1) AS m" for shape in shapes]
    return f"SELECT min(m) FROM ({' UNION ALL '.join(parts)})"


def read_page(query: Query, after: int, limit: int) -> tuple[str, list[Any]]:
    """The first ``limit`` events matching ``query`` after ``after``: each item's first
    ``limit`` positions (an index walk each), merged."""
    if query.matches_all:
        return (
            f"SELECT {_RECORD} FROM events WHERE position > ? ORDER BY position LIMIT ?",
            [after, limit],
        )
    parts: list[str] = []
    params: list[Any] = []
    for item in query.index_walks():
        statement, item_params = _item(item, after)
        parts.append(f"SELECT position FROM ({statement} LIMIT ?)")
        params.extend((*item_params, limit))
    union = " UNION ".join(parts)
    # CROSS JOIN: SQLite keeps the matches as the outer loop (with ``position IN (...)`` it may
    # scan the log in order and probe the list instead).
    return (
        f"SELECT {_E_RECORD} FROM ({union}) AS m CROSS JOIN events AS e "
        "ON e.position = m.position ORDER BY m.position LIMIT ?",
        [*params, limit],
    )
