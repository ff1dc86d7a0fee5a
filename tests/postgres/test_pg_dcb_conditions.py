"""PostgreSQL's conditional append checks its condition without a lock, then proves it still
holds under the sequencer's lock (the head did not move), or checks it again there. Here
another store appends exactly between the check and the insert (a hook after the first read:
the database is real, only the interleaving is chosen)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import eventkeep
from eventkeep import AppendCondition, AppendConditionError, NewEvent, Query, QueryItem, RawEvent
from eventkeep.backends.postgres import plans
from pg_fixtures import PgServer, fresh_store_url

QUERY = Query([QueryItem(types=["Claimed"], tags=["username:ann"])])


def claim(tag: str = "username:ann") -> NewEvent:
    return NewEvent(RawEvent("Claimed", {}), tags=[tag])


@pytest.fixture
def stores(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    url = fresh_store_url(request, pg_server)
    with eventkeep.open_store(url) as store, eventkeep.open_store(url) as other:
        yield store, other


def between_check_and_insert(monkeypatch: pytest.MonkeyPatch, act: Any) -> list[int]:
    """Run ``act()`` once, right after the first unlocked read of a conditional append."""
    original = plans._read
    calls: list[int] = []

    def read(*args: Any, **kwargs: Any) -> Any:
        result = yield from original(*args, **kwargs)
        if kwargs.get("condition") is not None and not kwargs.get("lock") and not calls:
            calls.append(1)
            act()
        return result

    monkeypatch.setattr(plans, "_read", read)
    return calls


def test_an_unrelated_append_in_between_moves_the_head_and_the_append_still_goes_through(
    stores: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, other = stores
    calls = between_check_and_insert(monkeypatch, lambda: other.append_events([claim("x")]))
    original = plans._append_checked_locked
    locked: list[int] = []

    def checked_locked(*args: Any) -> Any:
        locked.append(1)
        return (yield from original(*args))

    monkeypatch.setattr(plans, "_append_checked_locked", checked_locked)
    result = store.append_events([claim()], condition=AppendCondition(QUERY, 0))
    assert calls == [1]
    assert locked == [1]  # the insert found the head moved (EKC01) and checked again
    assert result.positions == (2,)  # after the one appended in between
    assert [e.tags for e in store.read(QUERY)] == [("username:ann",)]


def test_a_matching_append_in_between_fails_the_condition_and_nothing_is_written(
    stores: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, other = stores
    calls = between_check_and_insert(monkeypatch, lambda: other.append_events([claim()]))
    with pytest.raises(AppendConditionError) as caught:
        store.append_events([claim()], condition=AppendCondition(QUERY, 0))
    assert calls == [1]
    assert caught.value.position == 1
    assert store.head_position() == 1
    assert store.verify().ok
