"""Queries (:mod:`eventkeep.store.dcb`) as PostgreSQL statements, each item served by an index.

An item with tags walks the ``event_tags`` primary key ``(tag, position)`` of its first tag,
in position order, its types checked in the index (``INCLUDE (type)``), and probes its other
tags per event; an item with types only
walks ``events_by_type (type, position)``; an item with neither is the log itself
(``events_position``).
"""

from __future__ import annotations

import functools
from typing import Any

from eventkeep.backends.postgres.sql import HEAD_POSITION_INLINE, RECORD_COLUMNS
from eventkeep.store.dcb import Query, QueryItem

__all__ = ["first_match", "first_match_and_head", "read_page"]


def _item(item: QueryItem, after: int) -> tuple[str, list[Any]]:
    """A SELECT of the positions matching ``item`` after ``after``, in position order (an
    item with types but no tags has one type, see ``Query.index_walks``)."""
    return _item_statement(len(item.tags), len(item.types)), _item_params(item, after)


@functools.lru_cache(maxsize=256)
def _item_statement(tags: int, types: int) -> str:
    """``_item``'s statement for an item of ``tags`` tags and ``types`` types (the text
    depends on nothing else: built once per shape). Types are scalar parameters: psycopg
    adapts a list to an array in Python, several times slower."""
    if tags:
        joins = "".join(
            f" JOIN event_tags AS t{n} ON t{n}.tag = %s AND t{n}.position = t0.position"
            for n in range(1, tags)
        )
        where_types = f" AND t0.type IN ({', '.join(['%s'] * types)})" if types else ""
        return (
            f"SELECT t0.position FROM event_tags AS t0{joins} "
            f"WHERE t0.tag = %s AND t0.position > %s{where_types} ORDER BY t0.position"
        )
    if types:
        return "SELECT position FROM events WHERE type = %s AND position > %s ORDER BY position"
    return "SELECT position FROM events WHERE position > %s ORDER BY position"


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
    parts = [f"({_item_statement(*shape)} LIMIT 1)" for shape in shapes]
    return f"SELECT least({', '.join(parts)})"


def first_match_and_head(query: Query, after: int) -> tuple[str, list[Any]]:
    """``first_match`` and the head position, from one snapshot (one statement)."""
    statement, params = first_match(query, after)
    return f"{statement}, {HEAD_POSITION_INLINE}", params


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
