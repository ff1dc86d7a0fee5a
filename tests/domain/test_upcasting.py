"""Schema evolution: old events, as stored, are upcast on read and applied by aggregates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from eventkeep import (
    Aggregate,
    ConfigurationError,
    Event,
    EventStore,
    RawEvent,
    Repository,
    applies,
    upcasts,
)
from eventkeep.examples.bank import AccountOpened, BankAccount, Deposited


class PriceSet(Event):
    """v1 {"price": "9.99"}; v2 renamed price to amount; v3 added currency."""

    __event_type__ = "upcasttest.PriceSet"
    __aliases__ = ("upcasttest.PriceChanged",)  # the type's name before it was renamed
    __schema_version__ = 3

    amount: Decimal
    currency: str

    @upcasts(1)
    def rename_price(data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)
        data["amount"] = data.pop("price")
        return data

    @upcasts(2)
    def add_currency(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "currency": "EUR"}


class Product(Aggregate):
    __category__ = "upcasttestproduct"
    __snapshot_every__ = 2

    price: Decimal = Decimal(0)
    currency: str = ""

    @applies(PriceSet)
    def _priced(self, event: PriceSet) -> None:
        self.price = event.amount
        self.currency = event.currency


STORED = [
    RawEvent("upcasttest.PriceChanged", {"price": "9.99"}, schema_version=1),
    RawEvent("upcasttest.PriceSet", {"amount": "10.50"}, schema_version=2),
    RawEvent("upcasttest.PriceSet", {"amount": "11.00", "currency": "USD"}, schema_version=3),
]


def test_an_upcaster_chain_round_trips_real_stored_old_data(store: EventStore) -> None:
    stream = "upcasttestproduct-p1"
    for raw in STORED:
        store.append(stream, [raw])
    recorded = list(store.read_stream(stream))
    assert [r.event for r in recorded] == [
        PriceSet(amount=Decimal("9.99"), currency="EUR"),
        PriceSet(amount=Decimal("10.50"), currency="EUR"),
        PriceSet(amount=Decimal("11.00"), currency="USD"),
    ]
    # The stored data is never rewritten: what was written is what is read back raw.
    assert [(r.type, r.schema_version, r.data) for r in recorded] == [
        (raw.type, raw.schema_version, raw.data) for raw in STORED
    ]
    products = Repository(store, Product)
    for version, price in ((1, "9.99"), (2, "10.50"), (3, "11.00")):
        product = products.load("p1", at_version=version)
        assert product.price == Decimal(price)
    # A new event is written at the current schema version and reads back the same.
    product = products.load("p1")
    product.record(PriceSet(amount=Decimal("12.00"), currency="EUR"))
    products.save(product)
    last = next(store.read_stream(stream, backwards=True, limit=1))
    assert (last.type, last.schema_version) == ("upcasttest.PriceSet", 3)
    assert last.event == PriceSet(amount=Decimal("12.00"), currency="EUR")
    assert products.load("p1").price == Decimal("12.00")  # through the snapshot as well


def test_the_bank_reads_its_version_1_deposits_and_its_old_type_name(store: EventStore) -> None:
    store.append(
        "bankaccount-old",
        [
            RawEvent("bank.Opened", {"owner": "Old Timer"}),
            RawEvent("bank.Deposited", {"amount": "25.00"}, schema_version=1),
            RawEvent("bank.Deposited", {"amount": "5.00", "currency": "EUR"}, schema_version=2),
        ],
    )
    events = [r.event for r in store.read_stream("bankaccount-old")]
    assert events == [
        AccountOpened(owner="Old Timer", currency="EUR"),
        Deposited(amount=Decimal("25.00"), currency="EUR"),
        Deposited(amount=Decimal("5.00"), currency="EUR"),
    ]
    account = Repository(store, BankAccount).load("old")
    assert (account.owner, account.balance) == ("Old Timer", Decimal("30.00"))


def test_a_missing_step_in_an_upcaster_chain_is_an_error_when_the_class_is_defined() -> None:
    with pytest.raises(ConfigurationError, match="no upcaster for 2 -> 3"):

        class Gappy(Event):
            __event_type__ = "upcasttest.Gappy"
            __schema_version__ = 3

            @upcasts(1)
            def one(data: dict[str, Any]) -> dict[str, Any]:
                return data
