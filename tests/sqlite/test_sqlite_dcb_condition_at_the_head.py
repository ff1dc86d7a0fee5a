"""A SQLite store skips the condition's probe when the condition's position is at the log's
last event, known from its own last append with nothing committed by anyone else since: no
event can lie after it. Whenever that is not known (another connection appended, the store
did some other write), the probe runs, and the outcome is the one it would have had anyway."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import eventkeep
from eventkeep import AppendCondition, AppendConditionError, NewEvent, Query, QueryItem, RawEvent
from eventkeep.backends.sqlite import writing

QUERY = Query([QueryItem(types=["Claimed"], tags=["username:ann"])])


def claim(tag: str = "username:ann") -> NewEvent:
    return NewEvent(RawEvent("Claimed", {}), uuid.uuid4(), tags=[tag])


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with eventkeep.open_store(url) as store, eventkeep.open_store(url) as other:
        yield store, other


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The conditions' probes run (their ``after``)."""
    calls: list[int] = []
    original = writing.dcb.first_match

    def first_match(query: Query, after: int) -> Any:
        calls.append(after)
        return original(query, after)

    monkeypatch.setattr(writing.dcb, "first_match", first_match)
    return calls


def test_a_condition_at_the_head_of_its_own_last_append_skips_the_probe(
    stores: Any, probes: list[int]
) -> None:
    store, _ = stores
    first = store.append_events([claim("username:bob")])
    head = first.positions[0]
    second = store.append_events([claim()], condition=AppendCondition(QUERY, head))
    assert probes == []
    # Its position is now behind the head: the probe runs, finds the claim, and fails it.
    with pytest.raises(AppendConditionError) as caught:
        store.append_events([claim()], condition=AppendCondition(QUERY, head))
    assert probes == [head]
    assert caught.value.position == second.positions[0]
    assert store.head_position() == 2
    assert store.verify().ok


def test_an_append_by_another_connection_is_seen_by_the_probe(
    stores: Any, probes: list[int]
) -> None:
    store, other = stores
    head = store.append_events([claim("username:bob")]).positions[0]
    other.append_events([claim()])  # a commit by another connection: the head is not known
    with pytest.raises(AppendConditionError) as caught:
        store.append_events([claim()], condition=AppendCondition(QUERY, head))
    assert probes == [head]
    assert caught.value.position == 2
    assert store.head_position() == 2


def test_a_resent_append_at_the_head_returns_its_original_result(
    stores: Any, probes: list[int]
) -> None:
    store, _ = stores
    head = store.append_events([claim("username:bob")]).positions[0]
    event = claim()
    condition = AppendCondition(QUERY, head)
    original = store.append_events([event], condition=condition)
    # The head moved past the condition with the original: the probe finds the original's
    # own event, and the planner recognizes the re-send.
    assert store.append_events([event], condition=condition) == original
    assert probes == [head]
    assert store.head_position() == 2


def test_after_another_kind_of_write_the_probe_runs_again(stores: Any, probes: list[int]) -> None:
    store, _ = stores
    head = store.append_events([claim("username:bob")]).positions[0]
    with store.transaction() as tx:  # a write of another kind: the store forgets what it knew
        tx.append_events([claim()])
    with pytest.raises(AppendConditionError):
        store.append_events([claim()], condition=AppendCondition(QUERY, head))
    assert probes[-1] == head
    assert store.head_position() == 2
