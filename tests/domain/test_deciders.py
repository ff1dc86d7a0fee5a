"""The functional style: a decider's three functions, run by the same repository."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import msgspec
import pytest

from eventkeep import (
    ConfigurationError,
    Decider,
    Event,
    EventStore,
    NotFoundError,
    RawEvent,
    Repository,
)
from eventkeep.examples.bank import (
    Account,
    AccountOpened,
    BankAccount,
    Deposit,
    Deposited,
    InsufficientFundsError,
    OpenAccount,
    Withdraw,
    Withdrawn,
    account_decider,
)


class Started(Event):
    __event_type__ = "dectest.Started"


class Ticked(Event):
    __event_type__ = "dectest.Ticked"


class Commented(Event):
    __event_type__ = "dectest.Commented"
    text: str


class Clock(msgspec.Struct, frozen=True):
    ticks: int = 0
    started: bool = False


@dataclass(frozen=True)
class Tick:
    times: int = 1


def evolve_clock(state: Clock, event: Started | Ticked) -> Clock:
    if isinstance(event, Started):
        return msgspec.structs.replace(state, started=True)
    return msgspec.structs.replace(state, ticks=state.ticks + 1)


def decide_clock(command: Tick, state: Clock) -> list[Started | Ticked]:
    events: list[Started | Ticked] = [] if state.started else [Started()]
    return events + [Ticked() for _ in range(command.times)]


clock_decider = Decider(
    initial_state=Clock, evolve=evolve_clock, decide=decide_clock, category="dectestclock"
)


def test_a_decider_is_pure_and_can_be_tested_without_a_store() -> None:
    assert account_decider.run(Deposit(Decimal("5.00")), given=[AccountOpened(owner="A")]) == [
        Deposited(amount=Decimal("5.00"), currency="EUR")
    ]
    with pytest.raises(InsufficientFundsError):
        account_decider.run(Withdraw(Decimal("1.00")), given=[AccountOpened(owner="A")])
    state = account_decider.fold([AccountOpened(owner="A"), Withdrawn(amount=Decimal("2"))])
    assert state.balance == Decimal("-2")


def test_the_repository_runs_a_decider_and_stores_its_events(store: EventStore) -> None:
    accounts = Repository(store, account_decider)
    assert accounts.handle("alice", OpenAccount(owner="Alice")) == [AccountOpened(owner="Alice")]
    accounts.handle("alice", Deposit(Decimal("40.00")))
    accounts.handle("alice", Withdraw(Decimal("15.00")))
    loaded = accounts.load("alice")
    assert loaded.state == Account(
        owner="Alice", balance=Decimal("25.00"), is_open=True, opened=True
    )
    assert loaded.version == 3
    with pytest.raises(InsufficientFundsError):
        accounts.handle("alice", Withdraw(Decimal("100.00")))
    assert store.stream_version("bankaccount-alice") == 3


def test_a_decider_and_a_class_read_the_same_streams_alike(store: EventStore) -> None:
    deciders = Repository(store, account_decider)
    classes = Repository(store, BankAccount)
    deciders.handle("bob", OpenAccount(owner="Bob"))
    account = classes.load("bob")
    account.deposit(Decimal("12.50"))
    classes.save(account)
    deciders.handle("bob", Withdraw(Decimal("2.50")))
    assert classes.load("bob").balance == deciders.load("bob").state.balance == Decimal("10.00")


def test_handle_loaded_aggregate_and_execute(store: EventStore) -> None:
    clocks = Repository(store, clock_decider)
    clock = clocks.create("c1")
    assert clock.handle(Tick(2)) == [Started(), Ticked(), Ticked()]
    clocks.save(clock)
    clocks.execute("c1", lambda c: c.handle(Tick()))
    assert clocks.load("c1").state == Clock(ticks=3, started=True)
    with pytest.raises(NotFoundError):
        clocks.handle("c2", Tick(), create=False)


def test_event_types_are_read_from_the_annotation_of_evolve() -> None:
    assert clock_decider.event_types == (Started, Ticked)
    assert clock_decider.state_type is Clock
    assert account_decider.state_type is Account


def test_an_event_type_the_decider_does_not_know_is_a_clear_error_at_load(
    store: EventStore,
) -> None:
    store.append("dectestclock-c1", [Started(), Commented(text="hi")])
    with pytest.raises(ConfigurationError, match=r"no handler for the event 'dectest.Commented'"):
        Repository(store, clock_decider).load("c1")
    store.append("dectestclock-c2", [RawEvent("dectest.Gone", {})])
    with pytest.raises(ConfigurationError, match="no Event class is registered"):
        Repository(store, clock_decider).load("c2")


def test_a_decider_can_ignore_event_types_deliberately(store: EventStore) -> None:
    tolerant = Decider(
        initial_state=Clock,
        evolve=evolve_clock,
        decide=decide_clock,
        category="dectesttolerant",
        ignored_events=(Commented, "dectest.Gone"),
    )
    store.append("dectesttolerant-c1", [Started(), Commented(text="x"), Ticked()])
    store.append("dectesttolerant-c1", [RawEvent("dectest.Gone", {})])
    loaded = Repository(store, tolerant).load("c1")
    assert (loaded.state, loaded.version) == (Clock(ticks=1, started=True), 4)


def test_event_types_can_be_given_explicitly() -> None:
    def evolve(state: int, event: object) -> int:
        return state + 1

    def decide(command: int, state: int) -> list[Ticked]:
        return [Ticked()] * command

    counting = Decider(
        initial_state=lambda: 0,
        evolve=evolve,
        decide=decide,
        category="dectestcounting",
        event_types=[Ticked],
    )
    assert counting.event_types == (Ticked,)
    assert counting.state_type is None
    assert counting.run(2, given=[Ticked()]) == [Ticked(), Ticked()]


def test_a_decider_without_declared_event_types_is_refused() -> None:
    def evolve(state, event):  # type: ignore[no-untyped-def]
        return state

    with pytest.raises(ConfigurationError, match="does not annotate its event parameter"):
        Decider(initial_state=Clock, evolve=evolve, decide=decide_clock, category="dectestnone")
    with pytest.raises(ConfigurationError, match="takes Event classes"):
        Decider(
            initial_state=Clock,
            evolve=evolve,
            decide=decide_clock,
            category="dectestnone",
            event_types=[int],  # type: ignore[list-item]
        )
    with pytest.raises(ConfigurationError, match="must be a function"):
        Decider(initial_state=Clock, evolve=evolve, decide=None, category="x")  # type: ignore[arg-type]


def test_a_decider_with_snapshots_needs_a_known_state_type() -> None:
    with pytest.raises(ConfigurationError, match="state type is unknown"):
        Decider(
            initial_state=lambda: Clock(),
            evolve=evolve_clock,
            decide=decide_clock,
            category="dectestnostate",
            snapshot_every=10,
        )


def test_a_decision_may_be_a_single_event() -> None:
    def decide(command: str, state: Clock) -> Started:
        return Started()

    single = Decider(
        initial_state=Clock, evolve=evolve_clock, decide=decide, category="dectestsingle"
    )
    assert single.run("go") == [Started()]
    assert repr(single) == "Decider(category='dectestsingle')"
