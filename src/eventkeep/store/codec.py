"""Encoding events to JSON bytes and decoding them back, with upcasting on the way in.

msgspec does the work: it is fast, strict, and lossless for Decimal (encoded as a string, never
through float), tz-aware datetimes, UUIDs, enums, nested structs, lists and optional fields.
JSON cannot hold NaN or infinity, which msgspec would quietly write as ``null``; those are refused.

Nothing is changed silently. Untyped data and metadata (``RawEvent`` data, any metadata, and the
fields of typed events declared ``Any``) are plain JSON: str keys; str, int, float, bool, None,
lists and mappings. Values with one standard JSON text are written as that text and read back as
it: Decimal, UUID, tz-aware datetime, date, time delta and enum become their str or number, a
tuple becomes a list. Values JSON would change are refused with a :class:`SerializationError`
naming where they are: non-str keys (``{1: "a", "1": "b"}`` would be written with one key
twice), bytes (base64 text, read back as a str), sets (a list in no fixed order) and naive
datetimes (no time zone). Typed fields declared with those types round-trip through their
declared type. Data nested deeper than :data:`MAX_DEPTH` levels is refused.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import math
import os
import random
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from eventkeep.errors import EventTooLargeError, SerializationError, ValidationError
from eventkeep.store.event_classes import MAX_DEPTH, class_plan, nested_too_deeply
from eventkeep.store.events import Event, NewEvent, RawEvent, TypeRegistry
from eventkeep.store.personal import (
    RESERVED_KEY,
    PersonalField,
    holds_personal,
    holds_reserved_key,
    personal_fields,
)
from eventkeep.store.tags import event_tags
from eventkeep.store.validation import MAX_SCHEMA_VERSION, check_count, check_name

if TYPE_CHECKING:
    from eventkeep.store.shredding import Shredder

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "MAX_DEPTH",
    "Codec",
    "PreparedEvent",
    "new_event_id",
    "new_event_uuid",
]

DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
"""Default limit on one event's encoded data plus metadata (1 MiB)."""


_EMPTY = b"{}"
_new_tuple = tuple.__new__


class PreparedEvent(NamedTuple):
    """An event encoded and checked, ready for a backend to store."""

    event_id: bytes
    type: str
    schema_version: int
    data: bytes
    metadata: bytes
    tags: tuple[str, ...] = ()
    """Sorted, without repeats (:func:`eventkeep.store.dcb.event_tags`)."""
    keys: tuple[tuple[str, bytes], ...] = ()
    """Data subjects' keys made for this event, which the append stores in its own
    transaction (their first use; see :mod:`eventkeep.store.shredding`)."""


class Codec:
    """Encodes events for storage and decodes stored events through a type registry."""

    def __init__(self, registry: TypeRegistry, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES):
        self.registry = registry
        self.max_event_bytes = max_event_bytes
        self._encoder = msgspec.json.Encoder()
        self._dict_decoder = msgspec.json.Decoder(dict[str, Any])
        self._any_decoder = msgspec.json.Decoder()
        self._decoders: dict[type[Event], msgspec.json.Decoder[Any]] = {}
        self.personal: Shredder | None = None
        """Encrypts personal fields and reveals them on reads (set by the store)."""

    # -- encoding -----------------------------------------------------------------------------

    def prepare(self, item: Any, call_metadata: Mapping[str, Any] | None) -> PreparedEvent:
        """Check and encode one item of an append call (an Event, RawEvent or NewEvent)."""
        event_id: bytes | None = None
        new_keys: dict[str, bytes] = {}
        metadata: Mapping[str, Any] | None = call_metadata
        original = item
        tagged = False
        if type(item) is NewEvent:
            tagged = item.tags is not None
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
            # The hot path (every event an aggregate records): which checks an event needs
            # depends on its class alone (see event_classes), and error texts are only built
            # when needed.
            cls = type(item)
            plan = class_plan(cls)
            type_name = plan.type_name
            schema_version = plan.schema_version
            try:
                data = self._encoder.encode(item)
            except RecursionError:
                raise _too_deep_error(f"event {type_name!r}") from None
            except (TypeError, ValueError, OverflowError) as exc:
                raise SerializationError(
                    f"event {type_name!r} cannot be encoded to JSON: {exc}"
                ) from exc
            # bytes.find, not ``in``: CPython's ``in`` on bytes first tries the needle as an
            # int, which costs twice the search itself on event-sized data.
            if plan.may_hold_float and data.find(b"null") != -1:
                _refuse_non_finite(item, f"event {type_name!r}")
            if plan.may_nest_too_deeply and nested_too_deeply(data):
                raise _too_deep_error(f"event {type_name!r}")
            if plan.untyped:
                self._check_untyped_fields(item, cls, plan.untyped, data, f"event {type_name!r}")
            if holds_reserved_key(data):
                raise _reserved_error(type_name)
            if plan.personal:
                event_id = event_id or new_event_id()
                data = self._seal(data, plan.personal, event_id, new_keys)
            tagged = tagged or plan.tagged
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
            data = self._encode_plain(item.data, f"event {type_name!r}", "data")
            if holds_reserved_key(data):
                raise _reserved_error(type_name)
            registered = self.registry.lookup(type_name)
            if registered is not None and schema_version == registered.__schema_version__:
                self._check_fits(registered, type_name, schema_version, data)
                spec = personal_fields(registered)
                if spec:
                    event_id = event_id or new_event_id()
                    data = self._seal(data, spec, event_id, new_keys)
        else:
            raise ValidationError(
                "append takes eventkeep.Event, RawEvent or NewEvent instances, "
                f"got {type(item).__name__}: {item!r:.80}"
            )
        tags = event_tags(original) if tagged else ()
        if metadata:
            if not isinstance(metadata, Mapping):
                raise ValidationError(f"metadata must be a mapping, got {type(metadata).__name__}")
            meta = self._encode_plain(metadata, f"event {type_name!r}", "metadata")
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
        # tuple.__new__ skips the NamedTuple's Python-level __new__ (a third of the cost).
        return _new_tuple(
            PreparedEvent,
            (
                event_id or new_event_id(),
                type_name,
                schema_version,
                data,
                meta,
                tags,
                tuple(new_keys.items()) if new_keys else (),
            ),
        )

    def _seal(
        self,
        data: bytes,
        spec: tuple[PersonalField, ...],
        event_id: bytes,
        new_keys: dict[str, bytes],
    ) -> bytes:
        """``data`` with each personal field encrypted with its subject's key (the nonce is
        derived from the event id and the field, so a retried append stores the same bytes)."""
        shredder = self.personal
        if shredder is None:
            raise ValidationError("events with Personal fields are appended through a store")
        fields = self._dict_decoder.decode(data)
        encode = self._encoder.encode
        for field in spec:
            if field.key in fields:
                subject = fields.get(field.subject_key)
                fields[field.key] = shredder.encrypt(
                    subject,
                    encode(fields[field.key]),
                    field.redacted,
                    event_id + field.nonce,
                    new_keys,
                )
        return encode(fields)

    def _encode(self, value: Any, what: str, may_hold_float: bool = True) -> bytes:
        try:
            out = self._encoder.encode(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(f"{what} cannot be encoded to JSON: {exc}") from exc
        if may_hold_float and out.find(b"null") != -1:
            _refuse_non_finite(value, what)
        return out

    def _encode_plain(self, value: Mapping[str, Any], what: str, root: str) -> bytes:
        """Encode untyped data or metadata, refusing whatever would not read back as given."""
        value = dict(value)
        try:
            out = self._encoder.encode(value)
        except RecursionError:
            raise _too_deep_error(f"{root} of {what}") from None
        except (TypeError, ValueError, OverflowError) as exc:
            _explain(value, what, root)
            raise SerializationError(f"{root} of {what} cannot be encoded to JSON: {exc}") from exc
        if nested_too_deeply(out):
            raise _too_deep_error(f"{root} of {what}")
        try:
            same = self._any_decoder.decode(out) == value
        except RecursionError:  # pragma: no cover - the depth check above comes first
            raise _too_deep_error(f"{root} of {what}") from None
        if not same:
            _explain(value, what, root)  # raises unless only a standard conversion happened
        return out

    def _check_fits(
        self, cls: type[Event], type_name: str, schema_version: int, data: bytes
    ) -> None:
        """Refuse untyped data of a registered type that its class could not read back
        (``{"sku": 5}`` for a field declared str): stored, it would fail every read."""
        try:
            self.decode_event(type_name, schema_version, data)
        except SerializationError as exc:
            raise SerializationError(
                f"RawEvent {type_name!r} (schema version {schema_version}) would be stored but "
                f"never read back: {exc}"
            ) from None

    def _check_untyped_fields(
        self, item: Any, cls: type, fields: tuple[str, ...], data: bytes, what: str
    ) -> None:
        """Refuse a typed event whose ``Any`` fields hold values JSON would change."""
        decoder = self._decoders.get(cls)
        if decoder is None:
            decoder = self._decoders[cls] = msgspec.json.Decoder(cls)
        try:
            if decoder.decode(data) == item:
                return
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # explained below if an untyped field is the cause
        for name in fields:
            _explain(getattr(item, name), what, name)

    def encode_json(self, value: Any) -> bytes:
        """Encode a JSON-compatible value (used for snapshots and checkpoints)."""
        return self._encode(value, "value")

    # -- decoding -----------------------------------------------------------------------------

    def reveal(self, raw: bytes) -> bytes:
        """Stored data with personal values revealed (or redacted if forgotten)."""
        if self.personal is not None and holds_personal(raw):
            return self.personal.reveal(raw)
        return raw

    def decode_data(self, raw: bytes | str, plain: bool = False) -> dict[str, Any]:
        """Stored data as a mapping (personal values revealed, or redacted if forgotten).
        ``plain``: ``raw`` is known to hold no encrypted value."""
        if not plain and self.personal is not None and holds_personal(raw):
            raw = self.personal.reveal(raw)
        try:
            return self._dict_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise SerializationError(f"stored event data is not a JSON object: {exc}") from exc

    def decode_event(
        self, type_name: str, schema_version: int, raw: bytes | str, plain: bool = False
    ) -> Event | RawEvent:
        """Decode stored data into its registered class, upcasting old schema versions.
        ``plain``: ``raw`` is known to hold no encrypted value."""
        if not plain and self.personal is not None and holds_personal(raw):
            raw = self.personal.reveal(raw)
        cls = self.registry.lookup(type_name)
        if cls is None:
            return RawEvent(type_name, self.decode_data(raw, True), schema_version)
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


def _reserved_error(type_name: str) -> ValidationError:
    return ValidationError(
        f"data of event {type_name!r} uses the reserved key {RESERVED_KEY!r}, which marks "
        "encrypted personal values in stored data; rename that key"
    )


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


def _too_deep_error(what: str) -> ValidationError:
    return ValidationError(f"{what} is nested too deeply (the limit is {MAX_DEPTH} levels)")


_CONVERTED = (Decimal, uuid.UUID, _dt.date, _dt.timedelta, enum.Enum)
"""Values JSON writes as their one standard text, read back as that str or number."""


def _explain(value: Any, what: str, root: str) -> None:
    """Raise for the first value under ``value`` that JSON would change or cannot hold.

    Returns if every difference is a standard conversion (a Decimal written as its str, ...).
    ``root`` names the top ("data", "metadata" or a field name) in the message.
    """
    stack: list[tuple[Any, str, int]] = [(value, root, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep_error(f"{root} of {what}")
        problem = None
        if isinstance(item, str | bool | int | None):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationError(f"{what}: {path} is {item!r}, which JSON cannot represent")
            continue
        if isinstance(item, Mapping):
            for key, inner in reversed(list(item.items())):
                if not isinstance(key, str):
                    raise SerializationError(
                        f"{what}: {path} has the key {key!r} ({type(key).__name__}); keys must "
                        "be str (JSON would turn it into a string, which can collide with "
                        "another key)"
                    )
                stack.append((inner, f"{path}[{key!r}]", depth + 1))
            continue
        if isinstance(item, list | tuple):
            stack.extend(
                (inner, f"{path}[{i}]", depth + 1) for i, inner in reversed(list(enumerate(item)))
            )
            continue
        if isinstance(item, bytes | bytearray | memoryview):
            problem = (
                "bytes, which JSON would store as base64 text and read back as a str; "
                "encode them as a str yourself, or declare a bytes field on a typed Event"
            )
        elif isinstance(item, set | frozenset):
            problem = (
                "a set, which JSON would store as a list in no fixed order; pass a sorted "
                "list, or declare a set field on a typed Event"
            )
        elif isinstance(item, _dt.datetime | _dt.time) and item.tzinfo is None:
            problem = (
                f"a naive {type(item).__name__} (no time zone), which JSON would store as "
                "text without an offset; give it a tzinfo, or pass an ISO string"
            )
        elif isinstance(item, _CONVERTED):
            continue
        elif isinstance(item, msgspec.Struct) or dataclasses.is_dataclass(item):
            inner = msgspec.to_builtins(
                item,
                builtin_types=(bytes, bytearray, memoryview, *_CONVERTED, _dt.time),
                str_keys=False,
            )
            stack.append((inner, path, depth))
            continue
        else:
            problem = f"a {type(item).__name__}, which JSON cannot represent"
        raise SerializationError(f"{what}: {path} is {problem}")


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
