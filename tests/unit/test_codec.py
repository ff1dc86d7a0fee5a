"""The codec: encoding events, refusing what JSON cannot hold, decoding and upcasting."""

from __future__ import annotations

import dataclasses
import enum
import math
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec
import pytest

import eventkeep
from eventkeep import (
    Event,
    EventTooLargeError,
    NewEvent,
    RawEvent,
    SerializationError,
    TypeRegistry,
    ValidationError,
    upcasts,
)
from eventkeep.store.codec import DEFAULT_MAX_EVENT_BYTES, Codec
from eventkeep.store.event_classes import MAX_DEPTH, class_plan


class Suit(enum.Enum):
    HEARTS = "hearts"


class CodecMoneyMoved(Event):
    __event_type__ = "unit.codec.MoneyMoved"
    amount: Decimal
    at: datetime
    ref: uuid.UUID
    suit: Suit
    note: str | None = None


class CodecMeasured(Event):
    __event_type__ = "unit.codec.Measured"
    __schema_version__ = 2
    value: float
    unit: str

    @upcasts(1)
    def add_unit(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "unit": "m"}


@dataclasses.dataclass
class Corner:
    x: float


MOVED = CodecMoneyMoved(
    amount=Decimal("10.50"),
    at=datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    ref=uuid.UUID(int=7),
    suit=Suit.HEARTS,
)


@pytest.fixture
def codec() -> Codec:
    return Codec(TypeRegistry([CodecMoneyMoved, CodecMeasured]))


# -- encoding ------------------------------------------------------------------------------------


def test_a_typed_event_is_encoded_with_its_type_name_and_schema_version(codec: Codec) -> None:
    prepared = codec.prepare(MOVED, None)
    assert (prepared.type, prepared.schema_version) == ("unit.codec.MoneyMoved", 1)
    assert msgspec.json.decode(prepared.data) == {
        "amount": "10.50",
        "at": "2024-01-02T03:04:05.000006Z",
        "ref": "00000000-0000-0000-0000-000000000007",
        "suit": "hearts",
        "note": None,
    }
    assert prepared.metadata == b"{}"
    assert len(prepared.event_id) == 16


def test_a_generated_event_id_is_a_unique_time_ordered_uuid7(codec: Codec) -> None:
    ids = [codec.prepare(MOVED, None).event_id for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    uuids = [uuid.UUID(bytes=raw) for raw in ids]
    assert {u.version for u in uuids} == {7}
    assert {u.variant for u in uuids} == {uuid.RFC_4122}
    millis = [u.int >> 80 for u in uuids]
    assert millis == sorted(millis)
    assert abs(millis[-1] - time.time_ns() // 1_000_000) < 60_000


def test_new_event_uuid_is_an_ordinary_uuid7() -> None:
    # Built without uuid.UUID.__init__ for speed: it must behave exactly like a parsed UUID.
    import copy
    import pickle

    from eventkeep.store.codec import new_event_uuid

    made = new_event_uuid()
    same = uuid.UUID(str(made))
    assert type(made) is uuid.UUID
    assert made == same
    assert hash(made) == hash(same)
    assert made.int == same.int
    assert (made.version, made.variant, made.is_safe) == (7, uuid.RFC_4122, same.is_safe)
    assert pickle.loads(pickle.dumps(made)) == made == copy.deepcopy(made)
    assert len({new_event_uuid() for _ in range(1000)}) == 1000


def test_a_given_event_id_is_kept(codec: Codec) -> None:
    event_id = uuid.uuid4()
    assert codec.prepare(NewEvent(MOVED, event_id), None).event_id == event_id.bytes


def test_per_event_metadata_is_merged_over_the_call_metadata(codec: Codec) -> None:
    prepared = codec.prepare(
        NewEvent(MOVED, metadata={"causation_id": "mine", "extra": 1}),
        {"correlation_id": "c", "causation_id": "call"},
    )
    assert msgspec.json.decode(prepared.metadata) == {
        "correlation_id": "c",
        "causation_id": "mine",
        "extra": 1,
    }


def test_decimals_are_encoded_as_their_exact_string(codec: Codec) -> None:
    for text in ("0.1", "0.10", "-0", "1E+30", "123456789012345678901234567890.123456789"):
        prepared = codec.prepare(RawEvent("unit.Raw", {"d": Decimal(text)}), None)
        assert prepared.data == b'{"d":"' + text.encode() + b'"}'


def test_a_raw_event_keeps_its_type_and_schema_version(codec: Codec) -> None:
    prepared = codec.prepare(RawEvent("unit.Raw", {"a": [1, None]}, 5), None)
    assert (prepared.type, prepared.schema_version, prepared.data) == (
        "unit.Raw",
        5,
        b'{"a":[1,null]}',
    )


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        [1.0, math.nan],
        {"deep": {"deeper": (math.inf,)}},
        Corner(math.nan),
        {"lists": [[1.0], [math.inf]]},
    ],
    ids=["nan", "inf", "-inf", "in-a-list", "nested", "in-a-dataclass", "in-nested-lists"],
)
def test_non_finite_floats_are_refused_wherever_they_hide(codec: Codec, value: Any) -> None:
    with pytest.raises(ValidationError, match="JSON cannot represent"):
        codec.prepare(RawEvent("unit.Raw", {"x": value}), None)
    with pytest.raises(ValidationError):
        codec.prepare(MOVED, {"x": value})


def test_a_non_finite_float_in_a_typed_event_is_refused(codec: Codec) -> None:
    with pytest.raises(ValidationError):
        codec.prepare(CodecMeasured(value=math.nan, unit="m"), None)


def test_null_and_the_word_null_are_not_mistaken_for_nan(codec: Codec) -> None:
    prepared = codec.prepare(RawEvent("unit.Raw", {"a": None, "b": "null", "c": 1.5}), None)
    assert msgspec.json.decode(prepared.data) == {"a": None, "b": "null", "c": 1.5}


@pytest.mark.parametrize(
    "value",
    [object(), {1, object()}, "\udcff", b"\x00".decode() + "\ud800"],
    ids=["object", "set-with-object", "lone-surrogate", "nul-and-surrogate"],
)
def test_values_json_cannot_encode_raise_serialization_error(codec: Codec, value: Any) -> None:
    with pytest.raises(SerializationError):
        codec.prepare(RawEvent("unit.Raw", {"x": value}), None)


def test_an_event_exactly_at_the_size_limit_is_accepted_and_one_byte_more_is_not() -> None:
    codec = Codec(TypeRegistry(), max_event_bytes=100)
    # {"t":"..."} is 8 bytes plus the text; empty metadata is 2 bytes: {}
    assert len(codec.prepare(RawEvent("unit.Raw", {"t": "x" * 90}), None).data) == 98
    with pytest.raises(EventTooLargeError) as caught:
        codec.prepare(RawEvent("unit.Raw", {"t": "x" * 91}), None)
    assert (caught.value.size, caught.value.limit) == (101, 100)


def test_the_default_size_limit_is_one_mebibyte() -> None:
    assert DEFAULT_MAX_EVENT_BYTES == 1024 * 1024
    assert Codec(TypeRegistry()).max_event_bytes == DEFAULT_MAX_EVENT_BYTES


def test_encode_json_refuses_nan_like_event_data(codec: Codec) -> None:
    assert codec.encode_json({"a": [1, "b"]}) == b'{"a":[1,"b"]}'
    with pytest.raises(ValidationError):
        codec.encode_json({"a": math.nan})


# -- decoding ------------------------------------------------------------------------------------


def test_a_registered_type_decodes_to_an_equal_typed_event(codec: Codec) -> None:
    prepared = codec.prepare(
        CodecMoneyMoved(
            amount=Decimal("0.10"),
            at=datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2))),
            ref=uuid.uuid4(),
            suit=Suit.HEARTS,
            note="ü",
        ),
        None,
    )
    event = codec.decode_event(prepared.type, 1, prepared.data)
    assert isinstance(event, CodecMoneyMoved)
    assert codec.prepare(event, None).data == prepared.data
    assert event.at.utcoffset() == timedelta(hours=2)
    assert str(event.amount) == "0.10"


def test_an_unregistered_type_decodes_to_a_raw_event(codec: Codec) -> None:
    event = codec.decode_event("unit.Unknown", 3, b'{"a":1}')
    assert event == RawEvent("unit.Unknown", {"a": 1}, 3)


def test_an_old_schema_version_is_upcast_on_decode(codec: Codec) -> None:
    assert codec.decode_event("unit.codec.Measured", 1, b'{"value":2.5}') == CodecMeasured(
        value=2.5, unit="m"
    )


def test_a_schema_version_newer_than_the_class_is_a_clear_error(codec: Codec) -> None:
    with pytest.raises(SerializationError, match="newer"):
        codec.decode_event("unit.codec.Measured", 3, b'{"value":2.5,"unit":"m"}')


def test_stored_data_that_no_longer_fits_its_class_is_a_serialization_error(
    codec: Codec,
) -> None:
    with pytest.raises(SerializationError, match="does not fit"):
        codec.decode_event("unit.codec.Measured", 2, b'{"value":"not a number","unit":"m"}')
    with pytest.raises(SerializationError):
        codec.decode_event("unit.codec.Measured", 1, b'{"nothing":1}')


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b"", b'"text"'])
def test_data_that_is_not_a_json_object_is_a_serialization_error(codec: Codec, raw: bytes) -> None:
    with pytest.raises(SerializationError):
        codec.decode_data(raw)
    with pytest.raises(SerializationError):
        codec.decode_event("unit.Unknown", 1, raw)


@pytest.mark.parametrize("raw", [None, b"", b"{}", "{}"])
def test_empty_metadata_decodes_to_an_empty_dict(codec: Codec, raw: Any) -> None:
    assert codec.decode_metadata(raw) == {}


def test_metadata_and_data_decode_from_bytes_or_text(codec: Codec) -> None:
    assert codec.decode_metadata('{"a":1}') == {"a": 1}
    assert codec.decode_data(b'{"a":1}') == codec.decode_data('{"a":1}') == {"a": 1}


class _FloatInner(msgspec.Struct):
    x: float


class _NoFloats(Event):
    __event_type__ = "unit.NoFloats"
    amount: Decimal
    memo: str | None = None
    tags: list[str] = []


class _NestedFloat(Event):
    __event_type__ = "unit.NestedFloat"
    items: list[_FloatInner] = []


class _AnyValues(Event):
    __event_type__ = "unit.AnyValues"
    extra: dict[str, Any] = {}


def test_only_event_classes_that_can_hold_a_float_pay_for_the_nan_walk() -> None:
    assert class_plan(_NoFloats).may_hold_float is False
    assert class_plan(_NestedFloat).may_hold_float is True
    assert class_plan(_AnyValues).may_hold_float is True


class _Tree(Event):
    __event_type__ = "unit.Tree"
    children: list[_Tree] = []


class _Grid(Event):
    __event_type__ = "unit.Grid"
    rows: list[list[int]] = []


def test_only_event_classes_whose_types_do_not_bound_their_depth_pay_for_the_depth_walk() -> None:
    assert class_plan(_NoFloats).may_nest_too_deeply is False  # {"tags": [...]}: 2 levels
    assert class_plan(_Grid).may_nest_too_deeply is False  # 3 levels, whatever the data
    assert class_plan(_NestedFloat).may_nest_too_deeply is False
    assert class_plan(_AnyValues).may_nest_too_deeply is True  # Any: any depth
    assert class_plan(_Tree).may_nest_too_deeply is True  # recursive


def test_a_recursive_event_nested_too_deeply_is_refused_and_nothing_is_stored() -> None:
    store = eventkeep.open_store("memory://")
    tree = _Tree()
    for _ in range(MAX_DEPTH):
        tree = _Tree(children=[tree])
    with pytest.raises(ValidationError, match="nested too deeply"):
        store.append("s", [tree])
    assert store.head_position() == 0
    shallow = _Tree(children=[_Tree(children=[_Tree()])])
    store.append("s", [shallow])
    assert [r.event for r in store.read_stream("s")] == [shallow]


def test_an_abstract_event_class_is_refused_every_time() -> None:
    class _Base(Event):
        __abstract__ = True

    store = eventkeep.open_store("memory://")
    for _ in range(2):  # the refusal is never cached as a plan
        with pytest.raises(ValidationError, match="abstract"):
            store.append("s", [_Base()])
    assert store.head_position() == 0


@pytest.mark.parametrize(
    "event",
    [
        _NestedFloat(items=[_FloatInner(x=float("nan"))]),
        _AnyValues(extra={"deep": [{"x": float("-inf")}]}),
    ],
)
def test_nan_nested_anywhere_a_float_can_live_is_refused(event: Event) -> None:
    store = eventkeep.open_store("memory://")
    with pytest.raises(ValidationError, match="JSON cannot represent"):
        store.append("s", [event])
    assert store.head_position() == 0


def test_an_event_without_floats_and_with_nulls_is_stored_as_is() -> None:
    store = eventkeep.open_store("memory://")
    store.append("s", [_NoFloats(amount=Decimal("1.10"))])
    (recorded,) = store.read_stream("s")
    assert recorded.event == _NoFloats(amount=Decimal("1.10"))
    assert recorded.data == {"amount": "1.10", "memo": None, "tags": []}
