"""Decisions over queries (eventkeep.execute_decision): composed projections, the condition,
reload-and-retry, on a store and in a transaction, on every backend."""

from __future__ import annotations

from typing import Any

import pytest

import eventkeep
from eventkeep import (
    AppendConditionError,
    DecisionProjection,
    DecisionState,
    EventStore,
    NewEvent,
    Query,
    QueryItem,
    RawEvent,
    ValidationError,
    build_decision_model,
    execute_decision,
)


def counter(tag: str) -> DecisionProjection[int]:
    return DecisionProjection(Query([QueryItem(tags=[tag])]), 0, lambda n, _: n + 1)


def event(*tags: str) -> NewEvent:
    return NewEvent(RawEvent("Counted", {}), tags=list(tags))


def test_each_projection_folds_only_the_events_of_its_own_query(store: EventStore) -> None:
    store.append_events([event("a"), event("b"), event("a", "b"), event("c")])
    model = build_decision_model(store, a=counter("a"), b=counter("b"))
    assert (model.state.a, model.state["b"]) == (2, 2)
    assert model.condition.after == 4
    assert model.condition.fail_if_events_match == Query(
        [QueryItem(tags=["a"]), QueryItem(tags=["b"])]
    )
    with pytest.raises(AttributeError, match="no projection named 'c'"):
        _ = model.state.c


def test_a_decision_appends_under_its_condition_and_decides_again_when_it_fails(
    store: EventStore,
) -> None:
    calls: list[int] = []

    def decide(state: DecisionState) -> list[Any]:
        calls.append(state.a)
        if len(calls) == 1:  # someone else appends a relevant event meanwhile
            store.append_events([event("a")])
        return [event("a")]

    result = execute_decision(store, decide, a=counter("a"))
    assert result is not None
    assert calls == [0, 1]
    assert len(store.read(Query([QueryItem(tags=["a"])]))) == 2


def test_after_its_retries_the_condition_error_is_raised(store: EventStore) -> None:
    def decide(state: DecisionState) -> list[Any]:
        store.append_events([event("a")])
        return [event("a")]

    with pytest.raises(AppendConditionError):
        execute_decision(store, decide, retries=2, a=counter("a"))
    assert len(store.read(Query([QueryItem(tags=["a"])]))) == 3  # only the intruders


def test_a_refusal_or_no_events_appends_nothing(store: EventStore) -> None:
    class Refused(Exception):
        pass

    def refuse(state: DecisionState) -> list[Any]:
        raise Refused

    with pytest.raises(Refused):
        execute_decision(store, refuse, a=counter("a"))
    assert execute_decision(store, lambda state: [], a=counter("a")) is None
    assert store.head_position() == 0


def test_a_decision_may_append_to_a_stream_with_an_expected_version(store: EventStore) -> None:
    result = execute_decision(
        store, lambda s: [event("a")], stream_id="counter-1", expected_version=0, a=counter("a")
    )
    assert result is not None
    assert result.stream_id == "counter-1"
    with pytest.raises(eventkeep.ConcurrencyError):
        execute_decision(
            store, lambda s: [event("a")], stream_id="counter-1", expected_version=0, a=counter("a")
        )


def test_a_decision_runs_inside_a_transaction(store: EventStore) -> None:
    with store.transaction() as tx:
        execute_decision(tx, lambda s: [event("a")] if s.a == 0 else [], a=counter("a"))
        execute_decision(tx, lambda s: [event("a")] if s.a == 0 else [], a=counter("a"))
    assert len(store.read(Query([QueryItem(tags=["a"])]))) == 1


def test_bad_projections_are_refused(store: EventStore) -> None:
    with pytest.raises(ValidationError):
        execute_decision(store, lambda s: [])
    with pytest.raises(ValidationError):
        execute_decision(store, lambda s: [], a="not a projection")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        DecisionProjection("query", 0, lambda s, e: s)  # type: ignore[arg-type]
