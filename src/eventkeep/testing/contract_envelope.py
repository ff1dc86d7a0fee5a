"""The recorded envelope, lossless round trips, untyped events and upcasting on read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from eventkeep.store import EventStore
from eventkeep.store.events import NewEvent, RawEvent
from eventkeep.store.recorded import RecordedEvent
from eventkeep.testing.base import ContractBase, deposits
from eventkeep.testing.events import (
    Address,
    Audited,
    Color,
    Deposited,
    Level,
    Line,
    PriceChanged,
    Renamed,
    ValuesRecorded,
)

__all__ = ["EnvelopeContract"]

EVERY_VALUE = ValuesRecorded(
    amount=Decimal("12345678901234567890.123456789012345678"),
    at=datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ref=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    color=Color.GREEN,
    level=Level.HIGH,
    address=Address(street="Rue de l'Église 7", city="Zürich"),
    lines=[
        Line(sku="A-1", quantity=2, price=Decimal("0.10")),
        Line(sku="B-2", quantity=-1, price=Decimal("-1E+3")),
    ],
    tags=["", "日本語", "emoji 🙂", "rtl שלום", "nul \x00 inside", 'quote " and \\'],
    ratio=0.1,
    count=-(2**63),
    flag=False,
    note=None,
    scores={"a": [], "b": [2**63 - 1, 0]},
)

RAW_DATA: dict[str, Any] = {
    "null": None,
    "bool": True,
    "int": 2**70,
    "negative": -7,
    "float": 1.5e-300,
    "text": "ünïcödé 🙂 \u2028 \x00",
    "list": [1, "two", [3.0], {"four": 4}],
    "nested": {"a": {"b": {"c": []}}},
    "": "empty key",
}


def record_of(store: EventStore, stream_id: str, version: int = 1) -> RecordedEvent:
    return next(store.read_stream(stream_id, version, version))


class EnvelopeContract(ContractBase):
    def test_a_recorded_event_carries_its_whole_envelope(self, store: EventStore) -> None:
        event_id = uuid.uuid4()
        correlation, causation = uuid.uuid4(), uuid.uuid4()
        result = store.append(
            "account-1",
            [
                Deposited(amount=Decimal("1.00")),
                NewEvent(
                    Deposited(amount=Decimal("2.50")),
                    event_id=event_id,
                    metadata={"causation_id": str(causation), "user": "ada"},
                ),
            ],
            metadata={"correlation_id": str(correlation), "causation_id": "command-1"},
        )
        first, second = store.read_stream("account-1")
        assert (second.stream_id, second.version, second.position) == (
            "account-1",
            2,
            result.positions[1],
        )
        assert second.event_id == event_id
        assert isinstance(first.event_id, uuid.UUID)
        assert first.event_id != event_id
        assert (second.type, second.schema_version) == ("contract.Deposited", 1)
        assert second.event == Deposited(amount=Decimal("2.50"))
        assert second.data == {"amount": "2.50"}
        assert first.metadata == {"correlation_id": str(correlation), "causation_id": "command-1"}
        assert second.metadata == {
            "correlation_id": str(correlation),
            "causation_id": str(causation),
            "user": "ada",
        }
        assert (second.correlation_id, second.causation_id) == (str(correlation), str(causation))

    def test_generated_event_ids_are_distinct_uuids(self, store: EventStore) -> None:
        store.append("a", deposits(*range(50)))
        store.append("b", deposits(*range(50)))
        ids = [e.event_id for e in store.read_all()]
        assert all(isinstance(i, uuid.UUID) for i in ids)
        assert len(set(ids)) == 100

    def test_an_event_without_metadata_has_empty_metadata(self, store: EventStore) -> None:
        store.append("a", deposits(1))
        event = record_of(store, "a")
        assert event.metadata == {}
        assert (event.correlation_id, event.causation_id) == (None, None)

    def test_free_form_metadata_round_trips(self, store: EventStore) -> None:
        metadata = {"tenant": "t-1", "nested": {"list": [1, None, "ü"]}, "flag": False, "n": 2**40}
        store.append("a", deposits(1), metadata=metadata)
        assert record_of(store, "a").metadata == metadata

    def test_recorded_at_is_utc_and_never_decreases_along_the_log(self, store: EventStore) -> None:
        for i in range(10):
            store.append(f"s-{i % 3}", deposits(i, i))
        stamps = [e.recorded_at for e in store.read_all()]
        assert all(s.tzinfo is not None and s.utcoffset() == timedelta(0) for s in stamps)
        assert stamps == sorted(stamps)
        now = datetime.now(UTC)
        # Generous bounds: the store's clock may be a database server's; this catches unit slips.
        assert now - timedelta(days=1) < stamps[0] <= stamps[-1] < now + timedelta(days=1)

    def test_events_of_one_append_share_their_recorded_at(self, store: EventStore) -> None:
        store.append("a", deposits(1, 2, 3))
        assert len({e.recorded_at for e in store.read_stream("a")}) == 1

    def test_every_kind_of_value_round_trips_losslessly(self, store: EventStore) -> None:
        store.append(
            "values", [EVERY_VALUE, ValuesRecorded(**{**_fields(EVERY_VALUE), "note": "x"})]
        )
        first, second = [e.event for e in store.read_stream("values")]
        assert first == EVERY_VALUE
        assert isinstance(first, ValuesRecorded)
        assert first.at.utcoffset() == EVERY_VALUE.at.utcoffset()
        assert str(first.amount) == str(EVERY_VALUE.amount)
        assert [str(line.price) for line in first.lines] == ["0.10", "-1E+3"]
        assert type(first.color) is Color
        assert type(first.level) is Level
        assert isinstance(second, ValuesRecorded)
        assert second.note == "x"

    def test_decimals_are_stored_as_exact_strings_never_through_float(
        self, store: EventStore
    ) -> None:
        amounts = ["0.1", "0.10", "1E-28", "99999999999999999999.99", "-0"]
        store.append("a", deposits(*amounts))
        events = list(store.read_stream("a"))
        assert [e.data["amount"] for e in events] == amounts
        assert [str(e.event.amount) for e in events] == amounts  # type: ignore[union-attr]

    def test_text_that_needs_escaping_reads_back_exactly_on_every_read_path(
        self, store: EventStore
    ) -> None:
        # Backends may carry a page of events in an encoded form (SQLite: one JSON row per
        # page); every character must come back as appended, in every read.
        text = 'q"uo\\te\\" \\u00e9 \x01\x1f\x7f \n\r\t \u2028 \U0001f600 é ü 中'
        data = {"text": text, "big": 2**62, "neg": -(2**53) - 1, "nested": [{"k": text}]}
        metadata = {"note": text}
        store.append("esc-1", [RawEvent("contract.Escaped", data)] * 1, metadata=metadata)
        store.append("esc-2", [RawEvent("contract.Escaped", {"n": n}) for n in range(3)])
        paths = {
            "read_stream": list(store.read_stream("esc-1")),
            "read_stream backwards": list(store.read_stream("esc-1", backwards=True)),
            "read_all": [e for e in store.read_all() if e.stream_id == "esc-1"],
            "read_all by type": [
                e for e in store.read_all(types=["contract.Escaped"]) if e.stream_id == "esc-1"
            ],
            "read_all by prefix": list(store.read_all(stream_prefix="esc-1")),
        }
        for path, events in paths.items():
            assert len(events) == 1, path
            assert events[0].data == data, path
            assert events[0].metadata["note"] == text, path
        backwards = [e.version for e in store.read_stream("esc-2", backwards=True)]
        assert backwards == [3, 2, 1]
        positions = [e.position for e in store.read_all()]
        assert positions == sorted(positions)

    def test_an_event_with_no_fields_round_trips(self, store: EventStore) -> None:
        store.append("a", [Audited()])
        event = record_of(store, "a")
        assert (event.event, event.data) == (Audited(), {})

    # -- untyped events -----------------------------------------------------------------------

    def test_a_raw_event_of_an_unregistered_type_reads_back_as_a_raw_event(
        self, store: EventStore
    ) -> None:
        store.append("a", [RawEvent("contract.Unregistered", RAW_DATA, schema_version=4)])
        event = record_of(store, "a")
        assert (event.type, event.schema_version) == ("contract.Unregistered", 4)
        assert event.event == RawEvent("contract.Unregistered", RAW_DATA, 4)
        assert event.data == RAW_DATA

    def test_a_raw_event_of_a_registered_type_reads_back_typed(self, store: EventStore) -> None:
        store.append("a", [RawEvent("contract.Deposited", {"amount": "3.30"})])
        assert record_of(store, "a").event == Deposited(amount=Decimal("3.30"))

    def test_an_event_stored_under_an_alias_reads_back_as_its_class(
        self, store: EventStore
    ) -> None:
        store.append("a", [RawEvent("contract.NameChanged", {"name": "old"})])
        event = record_of(store, "a")
        assert event.type == "contract.NameChanged"
        assert event.event == Renamed(name="old")

    def test_reading_many_unregistered_types_never_raises(self, store: EventStore) -> None:
        store.append("a", [RawEvent(f"contract.Unknown{i}", {"i": i}) for i in range(20)])
        events = [e.event for e in store.read_all()]
        assert events == [RawEvent(f"contract.Unknown{i}", {"i": i}) for i in range(20)]

    # -- upcasting ----------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("schema_version", "data"),
        [
            pytest.param(1, {"price": "9.99"}, id="from-version-1"),
            pytest.param(2, {"price": "9.99", "currency": "EUR"}, id="from-version-2"),
            pytest.param(3, {"amount": "9.99", "currency": "EUR"}, id="current-version"),
        ],
    )
    def test_old_schema_versions_are_upcast_on_read(
        self, store: EventStore, schema_version: int, data: dict[str, Any]
    ) -> None:
        store.append("prices", [RawEvent("contract.PriceChanged", data, schema_version)])
        event = record_of(store, "prices")
        assert event.schema_version == schema_version
        assert event.data == data  # stored as written: upcasting happens on read only
        assert event.event == PriceChanged(amount=Decimal("9.99"), currency="EUR")

    def test_a_typed_event_is_stored_at_its_class_schema_version(self, store: EventStore) -> None:
        store.append("prices", [PriceChanged(amount=Decimal(1), currency="USD")])
        event = record_of(store, "prices")
        assert event.schema_version == 3
        assert event.event == PriceChanged(amount=Decimal(1), currency="USD")


def _fields(event: ValuesRecorded) -> dict[str, Any]:
    return {name: getattr(event, name) for name in event.__struct_fields__}
