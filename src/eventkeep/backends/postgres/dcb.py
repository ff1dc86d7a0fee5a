"""Queries (:mod:`eventkeep.store.dcb`) as PostgreSQL statements, each item served by an index.

An item with tags walks the ``event_tags`` primary key ``(tag, position)`` of its first tag,
in position order, its types checked in the index (``INCLUDE (type)``), and probes its other
tags per event; an item with types only
walks ``events_by_type (type, position)``; an item with neither is the log itself
(``events_position``).
"""

from __future__ import annotations

from typing import Any

from eventkeep.backends.postgres.sql import RECORD_COLUMNS
from eventkeep.store.dcb import Query, QueryItem

__all__ = ["first_match", "first_match_and_head", "read_page"]


def _item(item: QueryItem, after: int) -> tuple[str, list[Any]]:
    """A SELECT of the positions matching ``item`` after ``after``, in position order (an
    item with types but no tags has one type, see ``Query.index_walks``)."""
    params: list[Any] = []
    if item.tags:
        first, *others = item.tags
        joins = ""
        for n, tag in enumerate(others, 1):
            joins += f" JOIN event_tags AS t{n} ON t{n}.tag = %s AND t{n}.position = t0.position"
            params.append(tag)
        params.extend((first, after))
        types = ""
        if item.types:
            types = " AND t0.type = ANY (%s::text[])"
            params.append(list(item.types))
        return (
            f"SELECT t0.position FROM event_tags AS t0{joins} "
            f"WHERE t0.tag = %s AND t0.position > %s{types} ORDER BY t0.position",
            params,
        )
    if item.types:
        (name,) = item.types
        return (
            "SELECT position FROM events WHERE type = %s AND position > %s ORDER BY position",
            [name, after],
        )
    return "SELECT position FROM events WHERE position > %s ORDER BY position", [after]


def first_match(query: Query, after: int) -> tuple[str, list[Any]]:
    """A statement whose one row holds the first position matching ``query`` after ``after``
    (NULL when there is none): the append condition's check, one index probe per item."""
    parts: list[str] = []
    params: list[Any] = []
    for item in query.index_walks():
        statement, item_params = _item(item, after)
        parts.append(f"({statement} LIMIT 1)")
        params.extend(item_params)
    return f"SELECT least({', '.join(parts)})", params


def first_match_and_head(query: Query, after: int) -> tuple[str, list[Any]]:
    """``first_match`` and the head position, from one snapshot (one statement)."""
    statement, params = first_match(query, after)
    return f"{statement}, (SELECT eventkeep_head_position())", params


def read_page(query: Query, after: int, limit: int) -> tuple[str, list[Any]]:
    """The first ``limit`` events matching ``query`` after ``after``: each item's first
    ``limit`` positions (an index walk each), merged."""
    if query.matches_all:
        return (
            f"SELECT {RECORD_COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s",
            [after, limit],
        )
    parts: list[str] = []
    params: list[Any] = []
    for item in query.index_walks():
        statement, item_params = _item(item, after)
        parts.append(f"({statement} LIMIT %s)")
        params.extend((*item_params, limit))
    union = " UNION ".join(parts)
    return (
        f"SELECT {RECORD_COLUMNS} FROM events WHERE position IN ({union}) "
        "ORDER BY position LIMIT %s",
        [*params, limit],
    )
