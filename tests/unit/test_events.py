"""Event classes: type names, schema versions, aliases, the registry and upcaster chains."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest

import eventkeep
from eventkeep import ConfigurationError, Event, RawEvent, TypeRegistry, default_registry, upcasts
from eventkeep.store.events import NewEvent


@pytest.fixture
def defined() -> Iterator[list[type[Event]]]:
    """Classes a test defines; unregistered afterwards so tests stay independent."""
    classes: list[type[Event]] = []
    yield classes
    for cls in classes:
        default_registry.unregister(cls)


class UnitAccountOpened(Event):
    owner: str


class UnitRenamedType(Event):
    __event_type__ = "unit.account.renamed"
    __aliases__ = ("unit.AccountRenamed", "unit.NameChanged")
    name: str


def test_the_type_name_defaults_to_the_class_name() -> None:
    assert UnitAccountOpened.__event_type__ == "UnitAccountOpened"
    assert default_registry.lookup("UnitAccountOpened") is UnitAccountOpened


def test_the_type_name_can_be_set_and_the_class_name_is_then_not_registered() -> None:
    assert UnitRenamedType.__event_type__ == "unit.account.renamed"
    assert default_registry.lookup("unit.account.renamed") is UnitRenamedType
    assert "UnitRenamedType" not in default_registry


def test_aliases_resolve_to_the_class() -> None:
    for name in ("unit.AccountRenamed", "unit.NameChanged"):
        assert default_registry.lookup(name) is UnitRenamedType


def test_the_schema_version_defaults_to_one() -> None:
    assert UnitAccountOpened.__schema_version__ == 1


def test_a_subclass_gets_its_own_type_name_and_no_inherited_aliases(
    defined: list[type[Event]],
) -> None:
    class UnitRenamedAgain(UnitRenamedType):
        pass

    defined.append(UnitRenamedAgain)
    assert UnitRenamedAgain.__event_type__ == "UnitRenamedAgain"
    assert UnitRenamedAgain.__aliases__ == ()
    assert default_registry.lookup("unit.AccountRenamed") is UnitRenamedType


def test_events_are_immutable() -> None:
    event = UnitAccountOpened(owner="ada")
    with pytest.raises(AttributeError):
        event.owner = "bob"  # type: ignore[misc]


def test_events_with_equal_fields_are_equal_and_hashable() -> None:
    assert UnitAccountOpened(owner="ada") == UnitAccountOpened(owner="ada")
    assert len({UnitAccountOpened(owner="ada"), UnitAccountOpened(owner="ada")}) == 1


def test_two_classes_claiming_one_type_name_fail_at_definition() -> None:
    with pytest.raises(ConfigurationError, match=r"unit\.account\.renamed"):

        class Imposter(Event):
            __event_type__ = "unit.account.renamed"

    assert default_registry.lookup("unit.account.renamed") is UnitRenamedType


def test_an_alias_clashing_with_another_class_fails_and_registers_nothing() -> None:
    with pytest.raises(ConfigurationError, match="UnitAccountOpened"):

        class UnitClashing(Event):
            __event_type__ = "unit.clashing"
            __aliases__ = ("UnitAccountOpened",)

    assert "unit.clashing" not in default_registry
    assert default_registry.lookup("UnitAccountOpened") is UnitAccountOpened


def test_a_class_defined_again_under_the_same_module_and_name_takes_its_name_back(
    defined: list[type[Event]],
) -> None:
    def define() -> type[Event]:
        class UnitRedefined(Event):
            __event_type__ = "unit.redefined"
            value: int

        defined.append(UnitRedefined)
        return UnitRedefined

    first, second = define(), define()
    assert first is not second
    assert default_registry.lookup("unit.redefined") is second


@pytest.mark.parametrize("name", ["", " padded", "line\nbreak", "x" * 256, "\ud800"])
def test_a_bad_type_name_fails_at_definition(name: str) -> None:
    with pytest.raises(ConfigurationError):

        class UnitBadName(Event):
            __event_type__ = name


def test_an_abstract_event_is_not_registered_but_its_subclasses_are(
    defined: list[type[Event]],
) -> None:
    class UnitBase(Event):
        __abstract__ = True
        account: str

    class UnitConcrete(UnitBase):
        amount: Decimal

    defined.append(UnitConcrete)
    assert UnitBase.__abstract__ is True
    assert "UnitBase" not in default_registry
    assert UnitConcrete.__abstract__ is False
    assert default_registry.lookup("UnitConcrete") is UnitConcrete
    assert UnitConcrete(account="a", amount=Decimal(1)).account == "a"


class UnitPriceSet(Event):
    __event_type__ = "unit.PriceSet"
    __schema_version__ = 3
    amount: Decimal
    currency: str

    @upcasts(2)
    def rename(data: dict[str, Any]) -> dict[str, Any]:
        return {"amount": data["price"], "currency": data["currency"]}

    @upcasts(1)
    def add_currency(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "currency": "EUR"}


def test_upcasters_are_collected_by_the_version_they_start_from() -> None:
    steps = UnitPriceSet.__upcasters__
    assert sorted(steps) == [1, 2]
    data = steps[2](steps[1]({"price": "1.5"}))
    assert data == {"amount": "1.5", "currency": "EUR"}


def test_upcasters_are_static_functions_of_the_class() -> None:
    assert UnitPriceSet.add_currency({"price": "1"}) == {"price": "1", "currency": "EUR"}


def test_a_missing_upcaster_step_fails_at_class_definition() -> None:
    with pytest.raises(ConfigurationError, match=r"2 -> 3"):

        class UnitMissingStep(Event):
            __schema_version__ = 3

            @upcasts(1)
            def one(data: dict[str, Any]) -> dict[str, Any]:
                return data

    assert "UnitMissingStep" not in default_registry


def test_every_missing_step_is_named() -> None:
    with pytest.raises(ConfigurationError, match=r"1 -> 2, 2 -> 3"):

        class UnitNoSteps(Event):
            __schema_version__ = 3


@pytest.mark.parametrize("step", [3, 4], ids=["at-the-current-version", "beyond-it"])
def test_an_upcaster_step_out_of_range_fails_at_class_definition(step: int) -> None:
    with pytest.raises(ConfigurationError, match="starts at version"):

        class UnitOutOfRange(Event):
            __schema_version__ = 3

            @upcasts(1)
            def one(data: dict[str, Any]) -> dict[str, Any]:
                return data

            @upcasts(2)
            def two(data: dict[str, Any]) -> dict[str, Any]:
                return data

            @upcasts(step)
            def extra(data: dict[str, Any]) -> dict[str, Any]:
                return data


def test_two_upcasters_from_one_version_fail_at_class_definition() -> None:
    with pytest.raises(ConfigurationError, match="two upcasters"):

        class UnitTwice(Event):
            __schema_version__ = 2

            @upcasts(1)
            def one(data: dict[str, Any]) -> dict[str, Any]:
                return data

            @upcasts(1)
            def other(data: dict[str, Any]) -> dict[str, Any]:
                return data


@pytest.mark.parametrize("version", [0, -1, True, "1", 1.0])
def test_upcasts_takes_only_a_version_of_at_least_one(version: Any) -> None:
    with pytest.raises(ConfigurationError):
        upcasts(version)


@pytest.mark.parametrize("version", [0, -2, "2", 2.0, False])
def test_a_bad_schema_version_fails_at_class_definition(version: Any) -> None:
    with pytest.raises(ConfigurationError, match="__schema_version__"):

        class UnitBadVersion(Event):
            __schema_version__ = version


# -- the registry --------------------------------------------------------------------------------


def test_a_private_registry_is_independent_of_the_default_one() -> None:
    registry = TypeRegistry([UnitAccountOpened])
    assert registry.lookup("UnitAccountOpened") is UnitAccountOpened
    assert registry.lookup("unit.account.renamed") is None
    assert registry.names() == ["UnitAccountOpened"]
    registry.register(UnitRenamedType)
    assert registry.names() == sorted(
        ["UnitAccountOpened", "unit.account.renamed", "unit.AccountRenamed", "unit.NameChanged"]
    )


def test_unregister_removes_the_name_and_its_aliases() -> None:
    registry = TypeRegistry([UnitRenamedType])
    registry.unregister(UnitRenamedType)
    assert registry.names() == []
    assert "unit.NameChanged" not in registry


def test_registering_the_same_class_twice_is_harmless() -> None:
    registry = TypeRegistry([UnitAccountOpened, UnitAccountOpened])
    assert registry.register(UnitAccountOpened) is UnitAccountOpened
    assert registry.names() == ["UnitAccountOpened"]


@pytest.mark.parametrize("thing", [RawEvent, NewEvent, dict, "UnitAccountOpened", msgspec.Struct])
def test_only_event_classes_can_be_registered(thing: Any) -> None:
    with pytest.raises(ConfigurationError):
        TypeRegistry().register(thing)


def test_raw_events_and_new_events_carry_what_they_were_given() -> None:
    raw = RawEvent("unit.Thing", {"a": 1})
    assert (raw.type, raw.data, raw.schema_version) == ("unit.Thing", {"a": 1}, 1)
    wrapped = NewEvent(raw)
    assert (wrapped.event, wrapped.event_id, wrapped.metadata) == (raw, None, None)


def test_the_package_exposes_the_event_api() -> None:
    assert eventkeep.Event is Event
    assert eventkeep.upcasts is upcasts
