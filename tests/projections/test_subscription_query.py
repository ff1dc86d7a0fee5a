"""A subscription (and a projection) filtered by a DCB query delivers exactly the matching
events, in order, with checkpoints that skip what did not match."""

from __future__ import annotations

from typing import ClassVar

import pytest

from eventkeep import (
    ConfigurationError,
    EventStore,
    NewEvent,
    Query,
    QueryItem,
    RawEvent,
    ValidationError,
)
from eventkeep.projections import HandlerContext, Projection, Runner, handles
from eventkeep.projections.subscription import Subscription


def tagged(type_name: str, *tags: str) -> NewEvent:
    return NewEvent(RawEvent(type_name, {}), tags=list(tags))


def test_a_query_subscription_delivers_the_matching_events_in_batches(store: EventStore) -> None:
    store.append_events([tagged("A", "x"), tagged("B", "x"), tagged("A"), tagged("A", "x")])
    query = Query([QueryItem(types=["A"], tags=["x"])])
    subscription = Subscription(store, query=query, batch_size=1)
    first = subscription.fetch()
    assert ([e.position for e in first.events], first.position, first.caught_up) == ([1], 1, False)
    batches = list(subscription.batches(idle_timeout=0.01))
    assert [[e.position for e in b.events] for b in batches] == [[1], [4]]
    store.append_events([tagged("A", "x"), tagged("C", "x")])
    subscription.batch_size = 10
    rest = subscription.fetch()
    assert [e.position for e in rest.events] == [5]
    assert rest.position == 6
    assert rest.caught_up


def test_a_query_excludes_types_and_prefix(store: EventStore) -> None:
    with pytest.raises(ValidationError):
        Subscription(store, query=Query.all(), types=["A"])
    with pytest.raises(ValidationError):
        Subscription(store, query="x")  # type: ignore[arg-type]


class CourseRoster(Projection):
    """Only the math course's subscriptions, through the tag index."""

    name = "test.math_roster"
    transactional = False
    query = Query([QueryItem(types=["Subscribed"], tags=["course:math"])])
    seen: ClassVar[list[int]] = []

    @handles("Subscribed")
    def subscribed(self, event: RawEvent, ctx: HandlerContext) -> None:
        type(self).seen.append(ctx.position)


def test_a_projection_with_a_query_sees_only_the_matching_events(store: EventStore) -> None:
    CourseRoster.seen = []
    store.append_events(
        [
            tagged("Subscribed", "course:math"),
            tagged("Subscribed", "course:art"),
            tagged("Dropped", "course:math"),
            tagged("Subscribed", "course:math", "student:ann"),
        ]
    )
    runner = Runner(store, [CourseRoster()], lease_ttl=5.0)
    assert runner.run(until_caught_up=True, timeout=30)
    assert CourseRoster.seen == [1, 4]


def test_a_projection_query_is_checked_when_the_class_is_defined() -> None:
    with pytest.raises(ConfigurationError):

        class Both(Projection):
            name = "test.both"
            stream_prefix = "course-"
            query = Query.all()
