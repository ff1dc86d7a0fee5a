"""Decisions over a query (Dynamic Consistency Boundaries): rules that span entities.

A decision reads the events its rules need, folds them into small states, decides, and
appends under a condition that fails if any event its rules read has changed meanwhile. Each
rule is a :class:`DecisionProjection`: a query, an initial state and ``evolve``. A decision
combines several, by name; its query is the union of theirs, and each event read evolves
only the projections whose query it matches::

    def course_capacity(course: str) -> DecisionProjection[int]:
        return DecisionProjection(
            Query([QueryItem(types=[CourseDefined], tags=[f"course:{course}"])]),
            initial=0,
            evolve=lambda capacity, event: event.capacity,
        )

    def subscriptions_of_course(course: str) -> DecisionProjection[int]: ...
    def subscriptions_of_student(student: str) -> DecisionProjection[int]: ...

    def subscribe(state: DecisionState) -> list[Event]:
        if state.subscribed >= state.capacity:
            raise CourseFull(...)
        if state.taken >= 5:
            raise TooManyCourses(...)
        return [StudentSubscribed(student=student, course=course)]

    execute_decision(
        store,
        subscribe,
        capacity=course_capacity(course),
        subscribed=subscriptions_of_course(course),
        taken=subscriptions_of_student(student),
    )

``execute_decision`` reads, decides and appends (``append_events`` by default, or to
``stream_id``) with ``AppendCondition(query, after=the position read up to)``; when the
condition fails (another decision appended a relevant event meanwhile) it reads and decides
again, like ``Repository.execute`` on a ``ConcurrencyError``. It works on a store or inside
a transaction (``tx``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from eventkeep.errors import AppendConditionError, ValidationError
from eventkeep.store.base import Writer
from eventkeep.store.dcb import AppendCondition, Query
from eventkeep.store.events import Event, RawEvent
from eventkeep.store.types import ANY, AppendItem, AppendResult, Expected
from eventkeep.store.validation import check_count

__all__ = [
    "DecisionModel",
    "DecisionProjection",
    "DecisionState",
    "build_decision_model",
    "execute_decision",
]

logger = logging.getLogger("eventkeep.decisions")

S = TypeVar("S")

_jitter = random.Random()


class DecisionProjection(Generic[S]):
    """One rule's view of the log: the events matching ``query`` folded, from ``initial``, by
    ``evolve(state, event)`` (the typed event, or a ``RawEvent`` for an unregistered type)."""

    __slots__ = ("evolve", "initial", "query")

    def __init__(
        self, query: Query, initial: S, evolve: Callable[[S, Event | RawEvent], S]
    ) -> None:
        if not isinstance(query, Query):
            raise ValidationError(f"a DecisionProjection takes a Query, got {query!r:.80}")
        if not callable(evolve):
            raise ValidationError(f"evolve must be callable, got {evolve!r:.80}")
        self.query = query
        self.initial = initial
        self.evolve = evolve

    def __repr__(self) -> str:
        return f"DecisionProjection({self.query!r})"


class DecisionState:
    """The projections' states, by the names they were given (``state.capacity``, or
    ``state["capacity"]``)."""

    def __init__(self, states: Mapping[str, Any]) -> None:
        self.__dict__.update(states)

    def __getitem__(self, name: str) -> Any:
        return self.__dict__[name]

    def __getattr__(self, name: str) -> Any:  # only for names not set: a typo
        raise AttributeError(
            f"the decision has no projection named {name!r} (it has {sorted(self.__dict__)})"
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"DecisionState({inner})"


class DecisionModel:
    """What a decision is made on: the projections' ``state``, and the ``condition`` that an
    append based on it must carry (every event matching the union of the projections'
    queries, after the position read up to)."""

    __slots__ = ("condition", "state")

    def __init__(self, state: DecisionState, condition: AppendCondition) -> None:
        self.state = state
        self.condition = condition

    def __repr__(self) -> str:
        return f"DecisionModel({self.state!r}, after={self.condition.after})"


def _checked(projections: Mapping[str, DecisionProjection[Any]]) -> Query:
    if not projections:
        raise ValidationError("a decision needs at least one DecisionProjection")
    for name, projection in projections.items():
        if not isinstance(projection, DecisionProjection):
            raise ValidationError(
                f"{name}= must be a DecisionProjection, got {type(projection).__name__}"
            )
    return Query([item for p in projections.values() for item in p.query.items])


def build_decision_model(writer: Writer, **projections: DecisionProjection[Any]) -> DecisionModel:
    """Read the events of every projection's query at once and fold each into its state."""
    query = _checked(projections)
    result = writer.read(query)
    states = {name: p.initial for name, p in projections.items()}
    for recorded in result:
        tags = frozenset(recorded.tags)
        event = None
        for name, p in projections.items():
            if p.query.matches(recorded.type, tags):
                if event is None:
                    event = recorded.event
                states[name] = p.evolve(states[name], event)
    return DecisionModel(DecisionState(states), AppendCondition(query, result.head))


def execute_decision(
    writer: Writer,
    decide: Callable[[DecisionState], Iterable[AppendItem] | None],
    *,
    retries: int = 3,
    stream_id: str | None = None,
    expected_version: Expected | None = None,
    metadata: Mapping[str, Any] | None = None,
    **projections: DecisionProjection[Any],
) -> AppendResult | None:
    """Build the decision model of ``projections``, run ``decide(state)`` and append the
    events it returns under the model's condition; on ``AppendConditionError`` build and
    decide again, up to ``retries`` times (then the error is raised).

    ``decide`` may raise to refuse (its exception propagates, nothing is appended), and may
    run more than once, so it must have no other side effects. It returns the events to
    append (none: nothing is appended and None is returned). From the second retry on, a
    random pause (up to 50 ms) comes first, so that writers contending for one hot query take
    turns. They go to a stream of their own
    (``append_events``) unless ``stream_id`` names one (with ``expected_version``, default
    ANY). Returns the append's result.
    """
    check_count(retries, what="retries")
    _checked(projections)
    attempt = 0
    while True:
        model = build_decision_model(writer, **projections)
        decided = decide(model.state)
        events = [] if decided is None else list(decided)
        if not events:
            return None
        try:
            if stream_id is None:
                return writer.append_events(events, condition=model.condition, metadata=metadata)
            expected = ANY if expected_version is None else expected_version
            return writer.append(stream_id, events, expected, metadata, condition=model.condition)
        except AppendConditionError as exc:
            if attempt >= retries:
                raise
            attempt += 1
            logger.debug("%s; deciding again, attempt %d", exc, attempt + 1)
            if attempt > 1:
                # Lost twice or more: a hot query (every invoice). A random pause, growing to
                # at most 50 ms, keeps the same writer from losing every round to the others.
                time.sleep(_jitter.uniform(0, min(0.05, 0.001 * 2**attempt)))
