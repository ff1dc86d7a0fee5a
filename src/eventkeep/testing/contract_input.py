"""Bad input gets a clear error, and the store is left exactly as it was."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

import pytest

from eventkeep.errors import (
    EventkeepError,
    EventTooLargeError,
    SerializationError,
    ValidationError,
)
from eventkeep.store import ANY, EventStore, StreamAppend
from eventkeep.store.codec import DEFAULT_MAX_EVENT_BYTES
from eventkeep.store.events import NewEvent, RawEvent
from eventkeep.testing.base import ContractBase, StoreFactory, assert_unchanged, deposits, state
from eventkeep.testing.events import ContractEvent, Deposited, Noted, Point, Sampled

__all__ = ["BadInputContract"]

BAD_STREAM_IDS: list[Any] = [
    pytest.param("", id="empty"),
    pytest.param("x" * 256, id="256-characters"),
    pytest.param("a\x00b", id="NUL"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\tb", id="tab"),
    pytest.param("a\x7fb", id="DEL"),
    pytest.param("a\u2028b", id="line-separator"),
    pytest.param(" account-1", id="leading-space"),
    pytest.param("account-1 ", id="trailing-space"),
    pytest.param("account-1\u00a0", id="trailing-no-break-space"),
    pytest.param("a\ud800b", id="lone-surrogate"),
    pytest.param(42, id="int"),
    pytest.param(None, id="None"),
    pytest.param(b"account-1", id="bytes"),
    pytest.param(["account-1"], id="list"),
]

BAD_EXPECTED_VERSIONS: list[Any] = [
    pytest.param("0", id="str-digit"),
    pytest.param("any", id="str-any"),
    pytest.param(-1, id="negative"),
    pytest.param(True, id="True"),
    pytest.param(False, id="False"),
    pytest.param(None, id="None"),
    pytest.param(1.0, id="float"),
    pytest.param(Decimal(1), id="Decimal"),
    pytest.param(2**63, id="beyond-64-bits"),
]

NON_FINITE: list[Any] = [
    pytest.param(RawEvent("contract.Raw", {"x": math.nan}), id="NaN"),
    pytest.param(RawEvent("contract.Raw", {"x": math.inf}), id="infinity"),
    pytest.param(RawEvent("contract.Raw", {"x": -math.inf}), id="minus-infinity"),
    pytest.param(RawEvent("contract.Raw", {"x": {"y": [1.0, math.nan]}}), id="nested-NaN"),
    pytest.param(Sampled(value=math.nan), id="typed-field-NaN"),
    pytest.param(Sampled(value=1.0, series=[0.5, math.inf]), id="typed-list-infinity"),
    pytest.param(Sampled(value=1.0, point=Point(math.nan, 0.0)), id="dataclass-NaN"),
    pytest.param(NewEvent(Deposited(amount=Decimal(1)), metadata={"x": math.nan}), id="metadata"),
]


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


CHANGED_BY_JSON: list[Any] = [
    pytest.param({1: "a", "1": "b"}, id="int-key-colliding"),
    pytest.param({1: "a"}, id="int-key"),
    pytest.param({"x": {2.5: "a"}}, id="nested-float-key"),
    pytest.param({math.nan: 1}, id="NaN-key"),
    pytest.param({None: 1}, id="None-key"),
    pytest.param({"b": b"ab"}, id="bytes"),
    pytest.param({"b": [bytearray(b"ab")]}, id="bytearray"),
    pytest.param({"s": {1, 2}}, id="set"),
    pytest.param({"s": frozenset(["a"])}, id="frozenset"),
    pytest.param({"at": dt.datetime(2020, 1, 1)}, id="naive-datetime"),
    pytest.param({"at": dt.time(12, 0)}, id="naive-time"),
]
"""Untyped data JSON would read back as something else: refused, never stored changed."""

TOO_DEEP: list[Any] = [
    pytest.param({"x": _nested(1000)}, id="1000-levels"),
    pytest.param({"x": _nested(100_000)}, id="100000-levels"),
    pytest.param({"x": _nested(128)}, id="129-levels"),
]

NOT_EVENTS: list[Any] = [
    pytest.param({"type": "contract.Raw", "data": {}}, id="dict"),
    pytest.param("contract.Raw", id="str"),
    pytest.param(42, id="int"),
    pytest.param(None, id="None"),
    pytest.param(Deposited, id="an-event-class"),
    pytest.param(ContractEvent(), id="an-abstract-event"),
    pytest.param(NewEvent({"amount": 1}), id="NewEvent-of-a-dict"),  # type: ignore[arg-type]
    pytest.param(NewEvent(NewEvent(Deposited(amount=Decimal(1)))), id="NewEvent-of-a-NewEvent"),  # type: ignore[arg-type]
]

BAD_RAW_EVENTS: list[Any] = [
    pytest.param(RawEvent("", {}), id="empty-type"),
    pytest.param(RawEvent(" contract.Raw", {}), id="padded-type"),
    pytest.param(RawEvent("contract.\nRaw", {}), id="control-character-in-type"),
    pytest.param(RawEvent("contract.Raw", [1, 2]), id="list-data"),  # type: ignore[arg-type]
    pytest.param(RawEvent("contract.Raw", "{}"), id="str-data"),  # type: ignore[arg-type]
    pytest.param(RawEvent("contract.Raw", {}, 0), id="schema-version-0"),
    pytest.param(RawEvent("contract.Raw", {}, True), id="schema-version-True"),
    pytest.param(RawEvent("contract.Raw", {}, "1"), id="schema-version-str"),  # type: ignore[arg-type]
    pytest.param(RawEvent("contract.Raw", {}, 2**63), id="schema-version-beyond-64-bits"),
]


class BadInputContract(ContractBase):
    """Each test seeds one event, makes a bad call, and checks that nothing changed."""

    def refused(
        self,
        store: EventStore,
        error: type[EventkeepError],
        call: Callable[[], object],
    ) -> EventkeepError:
        store.append("seed", deposits(1))
        before = state(store)
        with pytest.raises(error) as caught:
            call()
        assert_unchanged(store, before)
        assert str(caught.value), "an error must say what was wrong"
        return caught.value

    @pytest.mark.parametrize("stream_id", BAD_STREAM_IDS)
    def test_a_bad_stream_id_is_refused_and_nothing_is_stored(
        self, store: EventStore, stream_id: Any
    ) -> None:
        self.refused(store, ValidationError, lambda: store.append(stream_id, deposits(1)))
        self.refused(
            store,
            ValidationError,
            lambda: store.append_many(
                [StreamAppend("fine", deposits(2)), StreamAppend(stream_id, deposits(3))]
            ),
        )

    @pytest.mark.parametrize("stream_id", BAD_STREAM_IDS)
    def test_reading_a_bad_stream_id_is_refused(self, store: EventStore, stream_id: Any) -> None:
        with pytest.raises(ValidationError):
            list(store.read_stream(stream_id))
        with pytest.raises(ValidationError):
            store.stream_version(stream_id)

    def test_the_longest_stream_id_and_unicode_stream_ids_are_accepted(
        self, store: EventStore
    ) -> None:
        names = ["x" * 255, "konto-ü-日本-🙂", "a b", "account:1/2#3", "a_%'\"\\"]
        for name in names:
            store.append(name, deposits(1))
        assert sorted(s.stream_id for s in store.list_streams()) == sorted(names)
        for name in names:
            assert [e.stream_id for e in store.read_stream(name)] == [name]

    def test_non_serializable_data_is_refused_and_nothing_is_stored(
        self, store: EventStore
    ) -> None:
        bad_events: list[Any] = [
            RawEvent("contract.Raw", {"x": object()}),
            RawEvent("contract.Raw", {"x": {"y": [1, object()]}}),
            RawEvent("contract.Raw", {"x": "\ud800"}),
            Deposited(amount=object()),  # type: ignore[arg-type]
        ]
        for bad in bad_events:
            self.refused(store, SerializationError, partial(store.append, "s", [*deposits(1), bad]))
        self.refused(
            store,
            SerializationError,
            lambda: store.append("s", deposits(1), metadata={"x": object()}),
        )

    def test_an_event_above_max_event_bytes_is_refused_and_nothing_is_stored(
        self, make_store: StoreFactory
    ) -> None:
        store = make_store(max_event_bytes=1000)
        store.append("s", [RawEvent("contract.Raw", {"text": "x" * 900})])
        big = RawEvent("contract.Raw", {"text": "x" * 1000})
        error = self.refused(
            store, EventTooLargeError, lambda: store.append("s", [*deposits(1), big])
        )
        assert isinstance(error, EventTooLargeError)
        assert isinstance(error, ValidationError)
        assert error.limit == 1000
        assert error.size > 1000
        assert "1000" in str(error)

    def test_metadata_counts_toward_the_event_size_limit(self, make_store: StoreFactory) -> None:
        store = make_store(max_event_bytes=1000)
        self.refused(
            store,
            EventTooLargeError,
            lambda: store.append("s", deposits(1), metadata={"note": "x" * 1000}),
        )

    def test_the_default_size_limit_is_one_mebibyte(self, store: EventStore) -> None:
        store.append(
            "s", [RawEvent("contract.Raw", {"text": "x" * (DEFAULT_MAX_EVENT_BYTES - 100)})]
        )
        big = RawEvent("contract.Raw", {"text": "x" * DEFAULT_MAX_EVENT_BYTES})
        self.refused(store, EventTooLargeError, lambda: store.append("s", [big]))

    @pytest.mark.parametrize("expected", BAD_EXPECTED_VERSIONS)
    def test_an_unknown_expected_version_is_refused_and_nothing_is_stored(
        self, store: EventStore, expected: Any
    ) -> None:
        self.refused(
            store,
            ValidationError,
            lambda: store.append("seed", deposits(2), expected_version=expected),
        )
        self.refused(
            store,
            ValidationError,
            lambda: store.append_many(
                [StreamAppend("a", deposits(2)), StreamAppend("b", deposits(3), expected)]
            ),
        )

    @pytest.mark.parametrize("item", NOT_EVENTS)
    def test_an_object_that_is_not_an_event_is_refused_and_nothing_is_stored(
        self, store: EventStore, item: Any
    ) -> None:
        self.refused(store, ValidationError, lambda: store.append("s", [*deposits(1), item]))

    @pytest.mark.parametrize("item", BAD_RAW_EVENTS)
    def test_a_malformed_raw_event_is_refused_and_nothing_is_stored(
        self, store: EventStore, item: Any
    ) -> None:
        self.refused(store, ValidationError, lambda: store.append("s", [*deposits(1), item]))

    @pytest.mark.parametrize(
        "single",
        [
            Deposited(amount=Decimal(1)),
            RawEvent("contract.Raw", {}),
            NewEvent(Deposited(amount=Decimal(1))),
            {"type": "contract.Raw"},
            "contract.Raw",
            b"contract.Raw",
        ],
        ids=["Event", "RawEvent", "NewEvent", "dict", "str", "bytes"],
    )
    def test_a_single_event_instead_of_a_list_is_refused_and_nothing_is_stored(
        self, store: EventStore, single: Any
    ) -> None:
        self.refused(store, ValidationError, lambda: store.append("s", single))
        self.refused(store, ValidationError, lambda: store.append_many([StreamAppend("s", single)]))

    def test_empty_appends_are_refused_and_nothing_is_stored(self, store: EventStore) -> None:
        self.refused(store, ValidationError, lambda: store.append("s", []))
        self.refused(store, ValidationError, lambda: store.append("s", iter(())))
        self.refused(store, ValidationError, lambda: store.append_many([]))
        self.refused(
            store,
            ValidationError,
            lambda: store.append_many([StreamAppend("a", deposits(1)), StreamAppend("b", [])]),
        )

    @pytest.mark.parametrize("data", CHANGED_BY_JSON)
    def test_untyped_data_json_would_change_is_refused_and_nothing_is_stored(
        self, store: EventStore, data: Any
    ) -> None:
        raw = RawEvent("contract.Raw", data)
        self.refused(store, SerializationError, lambda: store.append("s", [*deposits(1), raw]))
        self.refused(store, SerializationError, lambda: store.append("s", deposits(1), ANY, data))
        typed = NewEvent(Deposited(amount=Decimal(1)), metadata=data)
        self.refused(store, SerializationError, lambda: store.append("s", [typed]))
        noted = Noted(details=data)
        self.refused(store, SerializationError, lambda: store.append("s", [noted]))

    @pytest.mark.parametrize(
        "data",
        [{"amount": [1]}, {}, {"amount": "1.00", "extra": {1: 2}}],
        ids=["wrong-field-type", "missing-field", "int-key"],
    )
    def test_a_raw_event_its_registered_class_could_not_read_is_refused(
        self, store: EventStore, data: Any
    ) -> None:
        raw = RawEvent(Deposited.__event_type__, data)
        self.refused(store, SerializationError, lambda: store.append("s", [*deposits(1), raw]))

    def test_a_raw_event_of_a_registered_type_that_fits_reads_back_as_the_class(
        self, store: EventStore
    ) -> None:
        store.append("s", [RawEvent(Deposited.__event_type__, {"amount": "1.50"})])
        [recorded] = store.read_stream("s")
        assert recorded.event == Deposited(amount=Decimal("1.50"))

    @pytest.mark.parametrize("data", TOO_DEEP)
    def test_data_nested_too_deeply_is_refused_and_nothing_is_stored(
        self, store: EventStore, data: Any
    ) -> None:
        raw = RawEvent("contract.Raw", data)
        self.refused(store, ValidationError, lambda: store.append("s", [*deposits(1), raw]))
        self.refused(store, ValidationError, lambda: store.append("s", deposits(1), ANY, data))
        self.refused(store, ValidationError, lambda: store.append("s", [Noted(details=data)]))

    def test_data_nested_to_the_limit_and_brackets_in_text_are_stored(
        self, store: EventStore
    ) -> None:
        deep = {"x": _nested(127), "text": "[" * 1000 + "{" * 1000}
        typed = Noted(details=_nested(127), blob=b"[[[[")
        store.append("s", [RawEvent("contract.Raw", deep), typed])
        raw, noted = store.read_stream("s")
        assert raw.data == deep
        assert noted.event == typed

    def test_typed_fields_declared_with_bytes_sets_and_int_keys_round_trip(
        self, store: EventStore
    ) -> None:
        event = Noted(
            details={"plain": [1, "two", None, 2.5]},
            blob=b"\x00\xff",
            labels=frozenset({"a", "b"}),
            keyed={1: "a", 2: "b"},
            local=dt.datetime(2020, 1, 1, 12, 30),
        )
        store.append("s", [event])
        [recorded] = store.read_stream("s")
        assert recorded.event == event

    @pytest.mark.parametrize("item", NON_FINITE)
    def test_nan_and_infinity_are_refused_not_stored_as_null(
        self, store: EventStore, item: Any
    ) -> None:
        self.refused(store, ValidationError, lambda: store.append("s", [*deposits(1), item]))

    def test_null_and_finite_floats_are_still_accepted(self, store: EventStore) -> None:
        event = RawEvent("contract.Raw", {"x": None, "y": 1.5, "z": [None, "null", -0.25]})
        store.append("s", [event, Sampled(value=1e308, series=[0.1, -1e-300])])
        stored = list(store.read_stream("s"))
        assert stored[0].data == event.data
        assert stored[1].event == Sampled(value=1e308, series=[0.1, -1e-300])

    def test_the_same_event_id_twice_in_one_call_is_refused_and_nothing_is_stored(
        self, store: EventStore
    ) -> None:
        event_id = uuid.uuid4()
        twice = [NewEvent(e, event_id) for e in deposits(1, 2)]
        self.refused(store, ValidationError, lambda: store.append("s", twice))
        self.refused(
            store,
            ValidationError,
            lambda: store.append_many([StreamAppend("a", twice[:1]), StreamAppend("b", twice[1:])]),
        )

    def test_the_same_stream_twice_in_one_append_many_is_refused_and_nothing_is_stored(
        self, store: EventStore
    ) -> None:
        self.refused(
            store,
            ValidationError,
            lambda: store.append_many(
                [StreamAppend("a", deposits(1)), StreamAppend("a", deposits(2))]
            ),
        )

    @pytest.mark.parametrize(
        "item",
        [("a", deposits(1)), "a", None, {"stream_id": "a"}],
        ids=["tuple", "str", "None", "dict"],
    )
    def test_append_many_refuses_items_that_are_not_stream_appends(
        self, store: EventStore, item: Any
    ) -> None:
        self.refused(
            store,
            ValidationError,
            lambda: store.append_many([StreamAppend("b", deposits(1)), item]),
        )

    @pytest.mark.parametrize(
        "item",
        [
            NewEvent(Deposited(amount=Decimal(1)), event_id="not-a-uuid"),  # type: ignore[arg-type]
            NewEvent(Deposited(amount=Decimal(1)), event_id=uuid.uuid4().bytes),  # type: ignore[arg-type]
            NewEvent(Deposited(amount=Decimal(1)), metadata=["not", "a", "mapping"]),  # type: ignore[arg-type]
        ],
        ids=["str-event-id", "bytes-event-id", "list-metadata"],
    )
    def test_a_malformed_new_event_is_refused_and_nothing_is_stored(
        self, store: EventStore, item: Any
    ) -> None:
        self.refused(store, ValidationError, lambda: store.append("s", [item]))
        self.refused(
            store, ValidationError, lambda: store.append("s", [item], metadata={"call": 1})
        )

    @pytest.mark.parametrize("metadata", ["text", ["a"], 42], ids=["str", "list", "int"])
    def test_metadata_that_is_not_a_mapping_is_refused_and_nothing_is_stored(
        self, store: EventStore, metadata: Any
    ) -> None:
        self.refused(store, ValidationError, lambda: store.append("s", deposits(1), ANY, metadata))

    @pytest.mark.parametrize(
        "call",
        [
            lambda s: s.read_stream("seed", from_version=0),
            lambda s: s.read_stream("seed", from_version="1"),
            lambda s: s.read_stream("seed", to_version=-1),
            lambda s: s.read_stream("seed", limit=-1),
            lambda s: s.read_stream("seed", limit=True),
            lambda s: s.read_all(after=-1),
            lambda s: s.read_all(after="0"),
            lambda s: s.read_all(limit=-1),
            lambda s: s.read_all(types=[42]),
            lambda s: s.read_all(stream_prefix=42),
            lambda s: s.list_streams(prefix=None),
            lambda s: s.list_streams(limit=-1),
            lambda s: s.list_streams("a\ud800"),
            lambda s: s.read_all(stream_prefix="\udfff"),
            lambda s: s.read_all(types=["contract.\ud800"]),
            lambda s: s.delete_snapshots("\ud800"),
            lambda s: s.delete_snapshots(None),
            lambda s: s.read_stream("seed", from_version=2**63),
            lambda s: s.read_stream("seed", to_version=2**64),
            lambda s: s.read_stream("seed", limit=2**63),
            lambda s: s.read_all(after=2**63),
            lambda s: s.read_all(limit=2**70),
            lambda s: s.list_streams(limit=2**63),
            lambda s: s.load_snapshot("seed", max_version=2**63),
            lambda s: s.save_snapshot("seed", 2**63, "contract.State", 1, b""),
            lambda s: s.save_snapshot("seed", 1, "contract.State", 2**63, b""),
            lambda s: s.read_all(types=123),
            lambda s: s.read_all(types=b"contract.Raw"),
            lambda s: s.read_all(types=["contract.Deposited\x00"]),
            lambda s: s.read_all(stream_prefix="se\x00"),
            lambda s: s.list_streams("se\x00"),
            lambda s: s.list_streams("\x00"),
            lambda s: s.delete_snapshots("se\x00"),
            lambda s: s.read_stream("seed", backwards="no"),
            lambda s: s.read_stream("seed", backwards=1),
            lambda s: s.read_stream("seed", backwards=None),
        ],
        ids=[
            "from_version-0",
            "from_version-str",
            "to_version-negative",
            "stream-limit-negative",
            "stream-limit-bool",
            "after-negative",
            "after-str",
            "all-limit-negative",
            "types-int",
            "stream_prefix-int",
            "prefix-None",
            "list-limit-negative",
            "prefix-lone-surrogate",
            "stream_prefix-lone-surrogate",
            "type-name-lone-surrogate",
            "snapshot-prefix-lone-surrogate",
            "snapshot-prefix-None",
            "from_version-beyond-64-bits",
            "to_version-beyond-64-bits",
            "stream-limit-beyond-64-bits",
            "after-beyond-64-bits",
            "all-limit-beyond-64-bits",
            "list-limit-beyond-64-bits",
            "max_version-beyond-64-bits",
            "snapshot-version-beyond-64-bits",
            "snapshot-schema-version-beyond-64-bits",
            "types-not-iterable",
            "types-bytes",
            "type-name-NUL",
            "stream_prefix-NUL",
            "prefix-NUL",
            "prefix-only-NUL",
            "snapshot-prefix-NUL",
            "backwards-str",
            "backwards-int",
            "backwards-None",
        ],
    )
    def test_bad_read_and_snapshot_arguments_are_refused(
        self, store: EventStore, call: Callable[[EventStore], Any]
    ) -> None:
        store.append("seed", deposits(1))
        with pytest.raises(ValidationError):
            list(call(store))

    @pytest.mark.parametrize(
        "appends",
        [None, 42, StreamAppend("a", [RawEvent("contract.Raw", {})]), "a", {"a": []}],
        ids=["None", "int", "a-single-StreamAppend", "str", "dict"],
    )
    def test_append_many_of_something_not_a_list_is_refused(
        self, store: EventStore, appends: Any
    ) -> None:
        self.refused(store, ValidationError, lambda: store.append_many(appends))

    @pytest.mark.parametrize(
        "timeout",
        ["1", math.nan, math.inf, -math.inf, -1, True, [1], 10.0**30],
        ids=["str", "NaN", "infinity", "minus-infinity", "negative", "True", "list", "huge"],
    )
    def test_wait_for_events_refuses_a_timeout_that_is_not_finite_seconds(
        self, store: EventStore, timeout: Any
    ) -> None:
        store.append("seed", deposits(1))
        with pytest.raises(ValidationError, match="timeout"):
            store.wait_for_events(5, timeout=timeout)
        with pytest.raises(ValidationError, match="after"):
            store.wait_for_events(True, timeout=0)

    @pytest.mark.parametrize(
        "call",
        [
            lambda tx: tx.record(None),
            lambda tx: tx.record("a\x00b"),
            lambda tx: tx.save_record("", b"{}"),
            lambda tx: tx.save_record("r", "not bytes"),
            lambda tx: tx.delete_record(42),
            lambda tx: tx.checkpoint("a\x00"),
            lambda tx: tx.save_checkpoint("c", 1.5, expected=None),
            lambda tx: tx.save_checkpoint("c", True, expected=None),
        ],
        ids=[
            "record-None",
            "record-NUL",
            "save_record-empty-name",
            "save_record-str-data",
            "delete_record-int",
            "checkpoint-NUL",
            "checkpoint-float",
            "checkpoint-bool",
        ],
    )
    def test_bad_transaction_arguments_are_refused(
        self, store: EventStore, call: Callable[[Any], Any]
    ) -> None:
        store.append("seed", deposits(1))
        before = state(store)
        with pytest.raises(ValidationError), store.transaction() as tx:
            call(tx)
        assert_unchanged(store, before)
        with store.transaction() as tx:
            assert tx.records() == []
            assert tx.checkpoints() == {}
