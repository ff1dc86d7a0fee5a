"""Encoding events to JSON bytes and decoding them back, with upcasting on the way in.

msgspec does the work: it is fast, strict, and lossless for Decimal (encoded as a string, never
through float), tz-aware datetimes, UUIDs, enums, nested structs, lists and optional fields.
JSON cannot hold NaN or infinity, which msgspec would quietly write as ``null``; those are refused.
"""

from __future__ import annotations

import math
import os
import random
import time
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec

from eventkeep.errors import EventTooLargeError, SerializationError, ValidationError
from eventkeep.store.events import Event, NewEvent, RawEvent, TypeRegistry
from eventkeep.store.tags import event_tags
from eventkeep.store.validation import MAX_SCHEMA_VERSION, check_count, check_name

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "Codec", "PreparedEvent", "new_event_id", "new_event_uuid"]

DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
"""Default limit on one event's encoded data plus metadata (1 MiB)."""

_EMPTY = b"{}"


class PreparedEvent(NamedTuple):
    """An event encoded and checked, ready for a backend to store."""

    event_id: bytes
    type: str
    schema_version: int
    data: bytes
    metadata: bytes
    tags: tuple[str, ...] = ()
    """Sorted, without repeats (:func:`eventkeep.store.dcb.event_tags`)."""


class Codec:
    """Encodes events for storage and decodes stored events through a type registry."""

    def __init__(self, registry: TypeRegistry, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES):
        self.registry = registry
        self.max_event_bytes = max_event_bytes
        self._encoder = msgspec.json.Encoder()
        self._dict_decoder = msgspec.json.Decoder(dict[str, Any])
        self._decoders: dict[type[Event], msgspec.json.Decoder[Any]] = {}

    # -- encoding -----------------------------------------------------------------------------

    def prepare(self, item: Any, call_metadata: Mapping[str, Any] | None) -> PreparedEvent:
        """Check and encode one item of an append call (an Event, RawEvent or NewEvent)."""
        tags = event_tags(item)
        event_id: bytes | None = None
        metadata: Mapping[str, Any] | None = call_metadata
        if type(item) is NewEvent:
            given_id = item.event_id
            if given_id is not None:
                if not isinstance(given_id, uuid.UUID):
                    raise ValidationError(f"event_id must be a UUID, got {given_id!r}")
                event_id = given_id.bytes
            own = item.metadata
            if own is not None:
                if not isinstance(own, Mapping):
                    raise ValidationError(f"metadata must be a mapping, got {type(own).__name__}")
                if own:
                    metadata = {**call_metadata, **own} if call_metadata else own
            item = item.event
        if isinstance(item, Event):
            # The hot path (every event an aggregate records): error texts are only built when
            # needed. Types that cannot hold a float skip the NaN/infinity check altogether.
            cls = type(item)
            if cls.__abstract__:
                raise ValidationError(f"{cls.__qualname__} is abstract and cannot be appended")
            type_name, schema_version = cls.__event_type__, cls.__schema_version__
            try:
                data = self._encoder.encode(item)
            except (TypeError, ValueError, OverflowError) as exc:
                raise SerializationError(
                    f"event {type_name!r} cannot be encoded to JSON: {exc}"
                ) from exc
            if _may_hold_float(cls) and b"null" in data:
                _refuse_non_finite(item, f"event {type_name!r}")
        elif isinstance(item, RawEvent):
            type_name = check_name(item.type, what="event type")
            schema_version = item.schema_version
            check_count(
                schema_version,
                what=f"schema_version of {type_name!r}",
                minimum=1,
                maximum=MAX_SCHEMA_VERSION,
            )
            if not isinstance(item.data, Mapping):
                raise ValidationError(
                    f"data of event {type_name!r} must be a mapping, got {type(item.data).__name__}"
                )
            data = self._encode(dict(item.data), f"event {type_name!r}")
        else:
            raise ValidationError(
                "append takes eventkeep.Event, RawEvent or NewEvent instances, "
                f"got {type(item).__name__}: {item!r:.80}"
            )
        if metadata:
            if not isinstance(metadata, Mapping):
                raise ValidationError(f"metadata must be a mapping, got {type(metadata).__name__}")
            meta = self._encode(dict(metadata), f"metadata of event {type_name!r}")
        else:
            meta = _EMPTY
        size = len(data) + len(meta)
        if size > self.max_event_bytes:
            raise EventTooLargeError(
                f"event {type_name!r} encodes to {size} bytes; the limit is "
                f"{self.max_event_bytes} (max_event_bytes)",
                size=size,
                limit=self.max_event_bytes,
            )
        return PreparedEvent(
            event_id or new_event_id(), type_name, schema_version, data, meta, tags
        )

    def _encode(self, value: Any, what: str, may_hold_float: bool = True) -> bytes:
        try:
            out = self._encoder.encode(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"{what} cannot be encoded to JSON: {exc}") from exc
        if may_hold_float and b"null" in out:
            _refuse_non_finite(value, what)
        return out

    def encode_json(self, value: Any) -> bytes:
        """Encode a JSON-compatible value (used for snapshots and checkpoints)."""
        return self._encode(value, "value")

    # -- decoding -----------------------------------------------------------------------------

    def decode_data(self, raw: bytes | str) -> dict[str, Any]:
        try:
            return self._dict_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise SerializationError(f"stored event data is not a JSON object: {exc}") from exc

    def decode_event(
        self, type_name: str, schema_version: int, raw: bytes | str
    ) -> Event | RawEvent:
        """Decode stored data into its registered class, upcasting old schema versions."""
        cls = self.registry.lookup(type_name)
        if cls is None:
            return RawEvent(type_name, self.decode_data(raw), schema_version)
        current = cls.__schema_version__
        try:
            if schema_version == current:
                decoder = self._decoders.get(cls)
                if decoder is None:
                    decoder = self._decoders[cls] = msgspec.json.Decoder(cls)
                return decoder.decode(raw)  # type: ignore[no-any-return]
            if schema_version > current:
                raise SerializationError(
                    f"event {type_name!r} was stored at schema version {schema_version}, newer "
                    f"than {cls.__qualname__} (version {current}); upgrade the code that reads it"
                )
            data = self.decode_data(raw)
            for step in range(schema_version, current):
                data = cls.__upcasters__[step](data)
            return msgspec.convert(data, cls)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise SerializationError(
                f"stored event {type_name!r} (schema version {schema_version}) does not fit "
                f"{cls.__qualname__}: {exc}"
            ) from exc

    def decode_metadata(self, raw: bytes | str | None) -> dict[str, Any]:
        if not raw or raw == "{}" or raw == _EMPTY:
            return {}
        return self.decode_data(raw)


def new_event_id() -> bytes:
    """The 16 bytes of a new time-ordered (version 7, RFC 9562) UUID, without a ``uuid.UUID``.

    48 bits of Unix milliseconds, then 74 random bits. Ids made close in time sort close
    together, so the unique index on event ids takes new ids at its right edge instead of on a
    random page each: a batch of 100 events dirties a few index pages, not a hundred (random
    ids made appends slower as the store grew).
    """
    return _v7().to_bytes(16, "big")


def new_event_uuid() -> uuid.UUID:
    """:func:`new_event_id` as a ``uuid.UUID``."""
    # What ``uuid.UUID(int=...)`` builds (the same int and ``is_safe``), without its argument
    # parsing and range check: _v7() is in range by construction. Called once per recorded event.
    made = _new_uuid(_UUID)
    _set(made, "int", _v7())
    _set(made, "is_safe", _UNKNOWN_SAFETY)
    return made


_UUID = uuid.UUID
_new_uuid = object.__new__
_set = object.__setattr__
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown


# The random bits come from a generator of our own, seeded from os.urandom and reseeded in a
# forked child: unique across processes, never reset by a user's random.seed(), and ten times
# cheaper than an os.urandom call per id. Event ids need uniqueness, not secrecy.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)
_bits = _random.getrandbits
_V7 = (0x7 << 76) | (0b10 << 62)
_LOW62 = (1 << 62) - 1
_HIGH12 = ((1 << 74) - 1) ^ _LOW62
_time_ns = time.time_ns


def _v7() -> int:
    rand = _bits(74)
    # The top 12 random bits go to bits 64-75 (``(rand >> 62) << 64``), the low 62 to bits 0-61.
    return (_time_ns() // 1_000_000) << 80 | _V7 | (rand & _HIGH12) << 2 | (rand & _LOW62)


_FLOAT_FREE: dict[type, bool] = {}
_FLOAT_FREE_SCALARS = (
    msgspec.inspect.IntType,
    msgspec.inspect.StrType,
    msgspec.inspect.BoolType,
    msgspec.inspect.NoneType,
    msgspec.inspect.DecimalType,
    msgspec.inspect.DateTimeType,
    msgspec.inspect.DateType,
    msgspec.inspect.TimeType,
    msgspec.inspect.TimeDeltaType,
    msgspec.inspect.UUIDType,
    msgspec.inspect.EnumType,
    msgspec.inspect.LiteralType,
    msgspec.inspect.BytesType,
    msgspec.inspect.ByteArrayType,
    msgspec.inspect.RawType,
)


def _may_hold_float(cls: type) -> bool:
    """False when no field of ``cls``, however deeply nested, is typed to hold a float.

    Such events skip the NaN/infinity walk (msgspec writes both as ``null``, so the walk runs
    when the output holds a null, which every Optional field set to None causes). Structs do
    not check types on construction: a float smuggled into a field typed ``int`` is the
    caller's type error, refused on read rather than on append.
    """
    known = _FLOAT_FREE.get(cls)
    if known is None:
        try:
            known = _FLOAT_FREE[cls] = _floaty(msgspec.inspect.type_info(cls), set())
        except (TypeError, ValueError):  # a type msgspec cannot describe: check every time
            known = _FLOAT_FREE[cls] = True
    return known


def _floaty(info: msgspec.inspect.Type, seen: set[type]) -> bool:
    ins = msgspec.inspect
    if isinstance(info, ins.FloatType | ins.AnyType | ins.CustomType):
        return True
    if isinstance(
        info, ins.StructType | ins.DataclassType | ins.TypedDictType | ins.NamedTupleType
    ):
        if info.cls in seen:
            return False
        seen.add(info.cls)
        return any(_floaty(field.type, seen) for field in info.fields)
    if isinstance(info, ins.UnionType):
        return any(_floaty(member, seen) for member in info.types)
    if isinstance(info, ins.TupleType):
        return any(_floaty(member, seen) for member in info.item_types)
    if isinstance(info, ins.ListType | ins.SetType | ins.FrozenSetType | ins.VarTupleType):
        return _floaty(info.item_type, seen)
    if isinstance(info, ins.DictType | ins.FrozenDictType):
        return _floaty(info.key_type, seen) or _floaty(info.value_type, seen)
    if isinstance(info, ins.Metadata):
        return _floaty(info.type, seen)
    return not isinstance(info, _FLOAT_FREE_SCALARS)  # anything unknown: assume it might


def _refuse_non_finite(value: Any, what: str) -> None:
    """Raise if ``value`` holds NaN or infinity (msgspec would have written them as null)."""
    stack = [msgspec.to_builtins(value)]  # dataclasses, attrs, ... as plain dicts and lists
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationError(f"{what} holds {item!r}, which JSON cannot represent")
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif isinstance(item, msgspec.Struct):
            stack.extend(msgspec.structs.astuple(item))
