"""Class-based aggregates: commands record events, registered handlers apply them."""

from __future__ import annotations

from typing import ClassVar

import pytest

import eventkeep
from eventkeep import (
    Aggregate,
    ConfigurationError,
    Event,
    EventStore,
    RawEvent,
    Repository,
    ValidationError,
    applies,
)


class Incremented(Event):
    __event_type__ = "aggtest.Incremented"
    by: int = 1


class Reset(Event):
    __event_type__ = "aggtest.Reset"


class Noted(Event):
    __event_type__ = "aggtest.Noted"
    text: str


class Audited(Event):
    """A base event class: a handler for it applies to its subclasses."""

    __abstract__ = True
    __event_type__ = "aggtest.Audited"


class LoggedIn(Audited):
    __event_type__ = "aggtest.LoggedIn"


class LoggedOut(Audited):
    __event_type__ = "aggtest.LoggedOut"


class Counter(Aggregate):
    __category__ = "aggtestcounter"

    count: int = 0

    def increment(self, by: int = 1) -> None:
        if by <= 0:
            raise ValueError("increments are positive")
        self.record(Incremented(by=by))

    @applies(Incremented)
    def _incremented(self, event: Incremented) -> None:
        self.count += event.by

    @applies(Reset)
    def _reset(self, event: Reset) -> None:
        self.count = 0


class DoublingCounter(Counter):
    """Overrides one inherited handler by name, and adds one."""

    notes: tuple[str, ...] = ()

    def _incremented(self, event: Incremented) -> None:
        self.count += 2 * event.by

    @applies(Noted)
    def _noted(self, event: Noted) -> None:
        self.notes = (*self.notes, event.text)


class TolerantCounter(Counter):
    __category__ = "aggtesttolerant"
    __ignored_events__ = (Noted, "aggtest.FromAnOldRelease")


class Session(Aggregate):
    __category__ = "aggtestsession"
    limit: ClassVar[list[int]] = [3]  # a class variable is not state (and may be mutable)
    logins: int = 0

    @applies(Audited)
    def _audited(self, event: Audited) -> None:
        self.logins += 1 if isinstance(event, LoggedIn) else 0


def test_a_command_records_an_event_and_applies_it_through_its_handler() -> None:
    counter = Counter("c1")
    counter.increment(3)
    counter.increment()
    assert counter.count == 4
    assert counter.version == 2
    assert counter.pending_events == [Incremented(by=3), Incremented(by=1)]


def test_a_refused_command_records_nothing() -> None:
    counter = Counter("c1")
    with pytest.raises(ValueError, match="positive"):
        counter.increment(0)
    assert counter.version == 0
    assert counter.pending_events == []


def test_recording_an_event_the_aggregate_cannot_apply_is_a_configuration_error() -> None:
    counter = Counter("c1")
    with pytest.raises(ConfigurationError, match=r"no handler for the event 'aggtest.Noted'"):
        counter.record(Noted(text="hello"))
    assert counter.version == 0
    assert counter.pending_events == []


def test_record_takes_only_events() -> None:
    with pytest.raises(ValidationError, match=r"takes an eventkeep\.Event"):
        Counter("c1").record(RawEvent("aggtest.Incremented", {"by": 1}))  # type: ignore[arg-type]


def test_saved_events_are_replayed_by_the_same_handlers(store: EventStore) -> None:
    counters = Repository(store, Counter)
    counter = counters.create("c1")
    counter.increment(2)
    counter.record(Reset())
    counter.increment(5)
    counters.save(counter)
    assert counter.pending_events == []
    loaded = counters.load("c1")
    assert (loaded.count, loaded.version) == (5, 3)


def test_an_unhandled_event_type_in_the_stream_is_a_clear_error_at_load(
    store: EventStore,
) -> None:
    store.append("aggtestcounter-c1", [Incremented(by=1), Noted(text="hi")])
    with pytest.raises(ConfigurationError) as caught:
        Repository(store, Counter).load("c1")
    message = str(caught.value)
    assert "Counter has no handler for the event 'aggtest.Noted'" in message
    assert "aggtestcounter-c1@2" in message
    assert "@applies(Noted)" in message
    assert "__ignored_events__" in message


def test_an_unregistered_event_type_in_the_stream_is_a_clear_error_at_load(
    store: EventStore,
) -> None:
    store.append("aggtestcounter-c1", [RawEvent("aggtest.Unknown", {"x": 1})])
    with pytest.raises(ConfigurationError, match=r"no Event class is registered.*Unknown"):
        Repository(store, Counter).load("c1")


def test_deliberately_ignored_event_types_are_skipped_on_replay(store: EventStore) -> None:
    stream = "aggtesttolerant-t1"
    store.append(stream, [Incremented(by=2), Noted(text="skip me")])
    store.append(stream, [RawEvent("aggtest.FromAnOldRelease", {"any": "thing"})])
    store.append(stream, [Incremented(by=1)])
    counter = Repository(store, TolerantCounter).load("t1")
    assert (counter.count, counter.version) == (3, 4)
    counter.record(Noted(text="recorded but changes nothing"))
    assert counter.count == 3


def test_handlers_are_inherited_and_overridden_by_name(store: EventStore) -> None:
    counter = DoublingCounter("d1")
    counter.increment(3)
    counter.record(Noted(text="hi"))
    counter.record(Reset())
    counter.increment(1)
    assert (counter.count, counter.notes) == (2, ("hi",))
    assert Counter.__handlers__[Incremented] is Counter._incremented
    assert DoublingCounter.__handlers__[Incremented] is DoublingCounter._incremented


def test_a_handler_of_a_base_event_class_applies_to_its_subclasses() -> None:
    session = Session("s1")
    session.record(LoggedIn())
    session.record(LoggedOut())
    session.record(LoggedIn())
    assert session.logins == 2


def test_two_handlers_for_one_event_type_in_one_class_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"both _a\(\) and _b\(\) apply"):

        class Twice(Aggregate):
            @applies(Incremented)
            def _a(self, event: Incremented) -> None: ...

            @applies(Incremented)
            def _b(self, event: Incremented) -> None: ...


def test_handling_and_ignoring_the_same_type_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="both handles and ignores"):

        class Confused(Aggregate):
            __ignored_events__ = (Incremented,)

            @applies(Incremented)
            def _a(self, event: Incremented) -> None: ...


def test_applies_takes_event_classes_only() -> None:
    with pytest.raises(ConfigurationError, match="at least one"):
        applies()
    with pytest.raises(ConfigurationError, match="takes Event classes"):
        applies(int)  # type: ignore[arg-type]


def test_ignored_events_must_be_event_classes_or_type_names() -> None:
    with pytest.raises(ConfigurationError, match="takes Event classes or type names"):

        class Odd(Aggregate):
            __ignored_events__ = (42,)  # type: ignore[assignment]


def test_a_mutable_state_default_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(ConfigurationError, match=r"mutable default.*set it in __init__"):

        class Shared(Aggregate):
            items: list[str] = []


def test_the_category_defaults_to_the_class_name_and_must_not_hold_the_separator() -> None:
    class ShoppingCart(Aggregate):
        pass

    assert ShoppingCart.__category__ == "shoppingcart"
    with pytest.raises(ConfigurationError, match="must not contain the separator"):

        class Bad(Aggregate):
            __category__ = "shopping-cart"


def test_state_fields_are_the_annotated_public_attributes() -> None:
    assert Counter.__state_fields__ == ("count",)
    assert DoublingCounter.__state_fields__ == ("count", "notes")
    assert Session.__state_fields__ == ("logins",)


def test_an_aggregate_id_is_a_non_empty_string() -> None:
    with pytest.raises(ValidationError):
        Counter("")
    assert repr(Counter("c9")) == "Counter(id='c9', version=0)"


def test_the_public_names_are_exported() -> None:
    for name in ("Aggregate", "applies", "Decider", "Repository", "command_context"):
        assert name in eventkeep.__all__
