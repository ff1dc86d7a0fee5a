"""Personal data: the ``Personal`` field marker, what a forgotten value reads as, and the
stored form of an encrypted value.

A field is marked personal with ``typing.Annotated``::

    class CustomerRegistered(eventkeep.Event):
        customer_id: str
        email: Annotated[str, eventkeep.Personal(subject="customer_id")]

``subject`` names another field of the same event: its value is the id of the data subject
(the person) whose key encrypts the field (see :mod:`eventkeep.store.shredding`). The stored
data holds, in place of the value, an object with one reserved key::

    {"$eventkeep:personal": ["<subject id>", "<base64 of nonce + AES-GCM ciphertext>"]}

with a third element (the JSON text of the redacted value) when the field's redacted value is
not :data:`REDACTED`. Nothing else may use the reserved key: data that holds it is refused on
append, so any stored ``{"$eventkeep:personal":[`` is ciphertext, found with one bytes search.

Once the subject is forgotten (its key destroyed) the field reads as its *redacted value*:
:data:`REDACTED` for a field that holds a str, ``None`` for an optional field, otherwise the
``redacted=`` given to ``Personal``. A field for which none of these fits is refused when its
class is defined.
"""

from __future__ import annotations

import typing
from typing import Any, NamedTuple

import msgspec

from eventkeep.errors import ConfigurationError

__all__ = [
    "ENVELOPE_PREFIX",
    "REDACTED",
    "RESERVED_KEY",
    "RESERVED_KEY_JSON",
    "Personal",
    "PersonalField",
    "check_personal_fields",
    "holds_personal",
    "holds_personal_any",
    "personal_fields",
]

REDACTED = "[redacted]"
"""What a personal str field reads as once its subject is forgotten."""

RESERVED_KEY = "$eventkeep:personal"
"""The object key that marks an encrypted value in stored data; refused in user data."""

ENVELOPE_PREFIX = b'{"$eventkeep:personal":['
"""How every stored encrypted value starts: a bytes ``in`` finds ciphertext before parsing."""
_PREFIX_STR = ENVELOPE_PREFIX.decode()
RESERVED_KEY_JSON = b'"$eventkeep:personal"'
"""The reserved key as encoded JSON: a bytes ``in`` finds it in user data."""

_UNSET: Any = object()


class Personal:
    """Marks an event field as personal data of the subject named by field ``subject``.

    ``redacted``: what the field reads as once the subject is forgotten; needed only when the
    field's type holds neither a str nor None.
    """

    __slots__ = ("redacted", "subject")

    def __init__(self, subject: str, *, redacted: Any = _UNSET) -> None:
        if not isinstance(subject, str) or not subject:
            raise ConfigurationError(
                f"Personal(subject=...) takes the name of the field holding the subject id, "
                f"got {subject!r}"
            )
        self.subject = subject
        self.redacted = redacted

    def __repr__(self) -> str:
        extra = "" if self.redacted is _UNSET else f", redacted={self.redacted!r}"
        return f"Personal(subject={self.subject!r}{extra})"


class PersonalField(NamedTuple):
    """One personal field of an event class, ready for the codec."""

    name: str
    """The attribute name."""
    key: str
    """The name in the stored JSON (msgspec ``rename`` applied)."""
    subject: str
    """The attribute holding the subject id."""
    subject_key: str
    """Its name in the stored JSON."""
    redacted: bytes | None
    """The JSON text of the redacted value when it is not :data:`REDACTED`."""
    nonce: bytes
    """Mixed with the event id into the field's AES-GCM nonce: the stored name, encoded."""


def holds_personal(raw: bytes | str) -> bool:
    """True if stored data ``raw`` holds an encrypted value (no parsing; see :func:`_marked`)."""
    if isinstance(raw, str):
        return _marked(raw, _PREFIX_STR, "$", 2)
    return _marked(raw, ENVELOPE_PREFIX, b"$", 2)


def holds_personal_any(raws: list[bytes | str]) -> bool:
    """True if any of ``raws`` may hold an encrypted value: one search of them joined (a
    match across two of them is impossible, each being a whole JSON object; a false one
    would only cost the per-event search)."""
    try:
        if isinstance(raws[0], str):
            return _marked("".join(raws), _PREFIX_STR, "$", 2)  # type: ignore[arg-type]
        return _marked(b"".join(raws), ENVELOPE_PREFIX, b"$", 2)  # type: ignore[arg-type]
    except TypeError:  # str and bytes mixed
        return any(holds_personal(raw) for raw in raws)


def holds_reserved_key(data: bytes) -> bool:
    """True if encoded user data uses the reserved key anywhere (as a key or a value)."""
    return _marked(data, RESERVED_KEY_JSON, b"$", 1)


def _marked(text: Any, needle: Any, dollar: Any, offset: int) -> bool:
    """Whether ``needle`` (whose ``offset``-th character is its first ``$``) occurs in
    ``text``: each ``$`` found by memchr, then the needle compared there.

    A plain substring search of these needles can cost 8-10 ns per byte: CPython's search
    skips by the last character's distance in the needle, and letters of "personal" in the
    data make those skips short (measured: 15-21 us for 2 KB of "r"; 0.14 us to find no
    ``$`` in the same data). Most stored data holds no ``$`` at all.
    """
    at = text.find(dollar, offset)
    while at != -1:
        if text.startswith(needle, at - offset):
            return True
        at = text.find(dollar, at + 1)
    return False


def _declared(cls: type) -> dict[str, tuple[Any, Personal | None]]:
    """Every field's type and Personal marker, from the annotations (raises NameError while a
    forward reference cannot be resolved yet)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    found: dict[str, tuple[Any, Personal | None]] = {}
    for name, hint in hints.items():
        if name.startswith("__") or typing.get_origin(hint) is typing.ClassVar:
            continue
        marker = None
        base = hint
        if typing.get_origin(hint) is typing.Annotated:
            args = typing.get_args(hint)
            base = args[0]
            markers = [a for a in args[1:] if isinstance(a, Personal)]
            if len(markers) > 1:
                raise ConfigurationError(f"{cls.__qualname__}.{name} is marked Personal twice")
            marker = markers[0] if markers else None
        found[name] = (base, marker)
    return found


def _nested_personal(hint: Any) -> str | None:
    """The first field marked Personal in a struct or dataclass that ``hint`` is (or holds
    as an item or member), if any: such a marker would not encrypt anything."""
    stack, seen = [hint], set()
    while stack:
        item = stack.pop()
        if typing.get_origin(item) is typing.Annotated:
            item = typing.get_args(item)[0]
        if isinstance(item, type) and (
            issubclass(item, msgspec.Struct) or hasattr(item, "__dataclass_fields__")
        ):
            if item in seen:
                continue
            seen.add(item)
            try:
                inner = typing.get_type_hints(item, include_extras=True)
            except Exception:  # unresolvable: nothing to check here
                continue
            for field, field_hint in inner.items():
                if typing.get_origin(field_hint) is typing.Annotated and any(
                    isinstance(a, Personal) for a in typing.get_args(field_hint)[1:]
                ):
                    return f"{item.__qualname__}.{field}"
                stack.append(field_hint)
        else:
            stack.extend(typing.get_args(item))
    return None


def _fits(value: Any, hint: Any) -> bool:
    try:
        msgspec.json.decode(msgspec.json.encode(value), type=hint)
    except (msgspec.ValidationError, msgspec.DecodeError, TypeError, ValueError):
        return False
    return True


def _redacted_json(cls: type, name: str, hint: Any, marker: Personal) -> bytes | None:
    where = f"{cls.__qualname__}.{name}"
    if marker.redacted is not _UNSET:
        if not _fits(marker.redacted, hint):
            raise ConfigurationError(
                f"{where}: Personal(redacted={marker.redacted!r}) is not a value of the "
                f"field's type {hint!r}"
            )
        text = msgspec.json.encode(marker.redacted)
        return None if text == msgspec.json.encode(REDACTED) else text
    if _fits(REDACTED, hint):
        return None
    if _fits(None, hint):
        return b"null"
    raise ConfigurationError(
        f"{where} is Personal but its type {hint!r} holds neither a str nor None, so it has no "
        f"redacted value to read as once its subject is forgotten: give "
        f"Personal(subject=..., redacted=VALUE) or make the field optional"
    )


def check_personal_fields(cls: type) -> tuple[tuple[str, str, bytes | None], ...] | None:
    """Check the Personal markers of ``cls`` (raises ``ConfigurationError``): each names a
    subject field of the class that is not itself personal, and has a redacted value.

    Returns (field, subject field, redacted JSON) per personal field, or None when the
    annotations cannot be resolved yet (a forward reference): then the first use checks.
    """
    try:
        declared = _declared(cls)
    except (NameError, AttributeError, TypeError):
        return None
    out = []
    for name, (hint, marker) in declared.items():
        nested = _nested_personal(hint)
        if nested:
            raise ConfigurationError(
                f"{cls.__qualname__}.{name}: {nested} is marked Personal inside a nested type; "
                "only an event's own fields can be personal (mark the whole field instead)"
            )
        if marker is None:
            continue
        where = f"{cls.__qualname__}.{name}"
        subject = declared.get(marker.subject)
        if subject is None:
            raise ConfigurationError(
                f"{where}: Personal(subject={marker.subject!r}) names no field of "
                f"{cls.__qualname__}; it must name the field that holds the subject id"
            )
        if subject[1] is not None:
            raise ConfigurationError(
                f"{where}: its subject field {marker.subject!r} is itself Personal; the "
                "subject id must be stored in the clear to find the key"
            )
        out.append((name, marker.subject, _redacted_json(cls, name, hint, marker)))
    return tuple(out)


_SPECS: dict[type, tuple[PersonalField, ...]] = {}


def personal_fields(cls: type) -> tuple[PersonalField, ...]:
    """The personal fields of msgspec struct ``cls`` (cached; () for most classes)."""
    spec = _SPECS.get(cls)
    if spec is not None:
        return spec
    checked = check_personal_fields(cls)
    if checked is None:
        typing.get_type_hints(cls, include_extras=True)  # raises the NameError to explain
        checked = ()
    if not checked:
        _SPECS[cls] = ()
        return ()
    info = {f.name: f.encode_name for f in msgspec.structs.fields(cls)}
    spec = _SPECS[cls] = tuple(
        PersonalField(
            name, info[name], subject, info[subject], redacted, b"\x00" + info[name].encode()
        )
        for name, subject, redacted in checked
    )
    return spec
