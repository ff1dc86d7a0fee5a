"""The functional style: a decider is three pure functions.

::

    def initial_state() -> Account: ...
    def evolve(state: Account, event: AccountEvent) -> Account: ...      # AccountEvent: a union
    def decide(command: Command, state: Account) -> list[AccountEvent]: ...

    accounts_decider = eventkeep.Decider(
        initial_state=initial_state, evolve=evolve, decide=decide, category="bankaccount"
    )
    accounts = eventkeep.Repository(store, accounts_decider)
    accounts.handle("alice", Deposit(amount=Decimal("10")))

The repository runs a decider on the same machinery as a class-based aggregate: the decider
becomes an :class:`~eventkeep.Aggregate` subclass whose only state field is ``state`` and whose
one handler, for every event type the decider knows, is ``state = evolve(state, event)``.

The event types a decider knows are read from the annotation of ``evolve``'s event parameter (an
Event class or a union of them), or given as ``event_types=``; any other event type in a stream
is a ``ConfigurationError`` at load time unless listed in ``ignored_events``. Snapshots need the
state's type (read from ``initial_state``'s return annotation, or ``state_type=``) to be
encodable by msgspec: a Struct, a dataclass, a dict...
"""

from __future__ import annotations

import copy
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Generic, Self, TypeVar

from eventkeep.domain.aggregate import Aggregate, applies
from eventkeep.domain.snapshots import SnapshotPolicy
from eventkeep.errors import ConfigurationError
from eventkeep.store.events import Event

__all__ = ["Decider", "DeciderAggregate"]

C = TypeVar("C")
S = TypeVar("S")
E = TypeVar("E", bound=Event)


class DeciderAggregate(Aggregate, Generic[C, S, E]):
    """What a repository of a :class:`Decider` loads: an id, a version and the ``state``."""

    __abstract__ = True
    __decider__: ClassVar[Decider[Any, Any, Any]]

    state: S
    """The decider's state after every event applied so far."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.state = self.__decider__.initial_state()

    def handle(self, command: C) -> list[E]:
        """Decide on ``command`` from the current state, and record the resulting events."""
        decided = self.__decider__.decide(command, self.state)
        events = _as_list(decided)
        for event in events:
            self.record(event)
        return events

    def _ek_state_value(self) -> Any:
        return self.state

    def _ek_set_state(self, state: Any) -> None:
        self.state = state

    @classmethod
    def _ek_state_schema(cls) -> Any:
        state_type = cls.__decider__.state_type
        if state_type is None:
            raise ConfigurationError(
                f"the decider of {cls.__category__!r} has no known state type; annotate "
                "initial_state's return type or pass state_type="
            )
        return state_type

    def _ek_history_copy(self) -> Self:
        # A decider's state is replaced, never mutated, by evolve: sharing it is safe.
        duplicate = copy.copy(self)
        duplicate._ek_pending = []
        return duplicate


class Decider(Generic[C, S, E]):
    """``initial_state``, ``evolve`` and ``decide``, and where their events are stored.

    - ``category``: streams are ``<category>-<id>``.
    - ``event_types``: the events ``evolve`` understands (default: from its annotation).
    - ``ignored_events``: event classes or type names deliberately skipped on replay.
    - ``state_type``: the state's type, for snapshots (default: from ``initial_state``).
    - ``state_version``: raise it when the state's shape changes; older snapshots are ignored.
    - ``snapshot_every``: a snapshot policy (an int N or a policy object), None for none.
    """

    def __init__(
        self,
        *,
        initial_state: Callable[[], S],
        evolve: Callable[[S, E], S],
        decide: Callable[[C, S], E | Sequence[E]],
        category: str,
        event_types: Iterable[type[E]] | None = None,
        ignored_events: Iterable[type[Event] | str] = (),
        state_type: type[S] | None = None,
        state_version: int = 1,
        snapshot_every: int | SnapshotPolicy | None = None,
    ) -> None:
        for name, fn in (("initial_state", initial_state), ("evolve", evolve), ("decide", decide)):
            if not callable(fn):
                raise ConfigurationError(f"Decider {name} must be a function, got {fn!r}")
        self.initial_state = initial_state
        self.evolve = evolve
        self.decide = decide
        self.category = category
        self.event_types: tuple[type[E], ...] = (
            _checked_types(tuple(event_types))
            if event_types is not None
            else _event_types_of(evolve)
        )
        self.state_type: type[S] | None = (
            state_type if state_type is not None else _state_type_of(initial_state)
        )
        self.aggregate_type: type[DeciderAggregate[C, S, E]] = _aggregate_class(
            self, tuple(ignored_events), state_version, snapshot_every
        )

    def fold(self, events: Iterable[E], state: S | None = None) -> S:
        """The state after ``events``, from ``state`` or the initial state (pure)."""
        current = self.initial_state() if state is None else state
        for event in events:
            current = self.evolve(current, event)
        return current

    def run(self, command: C, given: Iterable[E] = ()) -> list[E]:
        """The events ``command`` decides after the ``given`` history (pure; for tests)."""
        return _as_list(self.decide(command, self.fold(given)))

    def __repr__(self) -> str:
        return f"Decider(category={self.category!r})"


def _as_list(decided: E | Sequence[E]) -> list[E]:
    if isinstance(decided, Event):
        return [decided]
    return list(decided)


def _aggregate_class(
    decider: Decider[C, S, E],
    ignored: tuple[type[Event] | str, ...],
    state_version: int,
    snapshot_every: int | SnapshotPolicy | None,
) -> type[DeciderAggregate[C, S, E]]:
    evolve = decider.evolve

    def _evolve(aggregate: DeciderAggregate[C, S, E], event: E) -> None:
        aggregate.state = evolve(aggregate.state, event)

    state_type = decider.state_type
    state_name = getattr(state_type, "__name__", None) or decider.category
    namespace: dict[str, Any] = {
        "__module__": getattr(evolve, "__module__", __name__),
        "__qualname__": f"Decider[{decider.category}]",
        "__decider__": decider,
        "__category__": decider.category,
        "__ignored_events__": ignored,
        "__state_version__": state_version,
        "__state_type__": state_name,
        "__snapshot_every__": snapshot_every,
        "_ek_evolve": applies(*decider.event_types)(_evolve),
    }
    cls: type[DeciderAggregate[C, S, E]] = types.new_class(
        f"Decider[{decider.category}]", (DeciderAggregate,), {}, lambda ns: ns.update(namespace)
    )
    if cls.__snapshot_policy__ is not None and state_type is None:
        raise ConfigurationError(
            f"the decider of {decider.category!r} takes snapshots but its state type is "
            "unknown; annotate initial_state's return type or pass state_type="
        )
    return cls


def _checked_types(event_types: tuple[Any, ...]) -> tuple[Any, ...]:
    if not event_types:
        raise ConfigurationError("a Decider needs at least one event type")
    for item in event_types:
        if not (isinstance(item, type) and issubclass(item, Event)):
            raise ConfigurationError(f"Decider event_types takes Event classes, got {item!r}")
    return event_types


def _event_types_of(evolve: Callable[..., Any]) -> tuple[Any, ...]:
    """The Event classes named by the annotation of ``evolve``'s second parameter."""
    try:
        params = list(inspect.signature(evolve).parameters.values())
        hints = typing.get_type_hints(evolve)
    except Exception as exc:  # any failure to resolve annotations means "not declared"
        raise ConfigurationError(
            f"cannot read the event types from the annotations of {evolve!r} ({exc}); "
            "pass event_types="
        ) from exc
    annotation = hints.get(params[1].name) if len(params) >= 2 else None
    if annotation is None:
        raise ConfigurationError(
            f"{getattr(evolve, '__qualname__', evolve)!r} does not annotate its event parameter; "
            "annotate it with the union of the events it applies, or pass event_types="
        )
    origin = typing.get_origin(annotation)
    members = (
        typing.get_args(annotation)
        if origin is typing.Union or origin is types.UnionType
        else (annotation,)
    )
    return _checked_types(members)


def _state_type_of(initial_state: Callable[[], Any]) -> Any:
    if isinstance(initial_state, type):
        return initial_state
    try:
        hint = typing.get_type_hints(initial_state).get("return")
    except Exception:  # an unresolvable annotation: the state type is simply unknown
        return None
    return hint if isinstance(hint, type) else None
