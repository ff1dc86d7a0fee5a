"""Events: the typed ``Event`` base class, untyped ``RawEvent``, and the type registry.

A user event is an immutable msgspec struct::

    class Deposited(eventkeep.Event):
        amount: Decimal

Its stable type name defaults to the class name and can be set with ``__event_type__``; its
schema version defaults to 1 and is set with ``__schema_version__``. Decoding goes through the
registry by type name, never by module path, so moving or renaming a class never breaks stored
data (old names stay readable through ``__aliases__``). When a class raises its schema version it
declares one upcaster per step with :func:`upcasts`; a missing step is an error when the class is
defined, not when an old event is first read in production.
"""

from __future__ import annotations

import string
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeAlias, dataclass_transform
from uuid import UUID

import msgspec

from eventkeep.errors import ConfigurationError
from eventkeep.store.personal import check_personal_fields
from eventkeep.store.validation import MAX_SCHEMA_VERSION, check_name

__all__ = [
    "Event",
    "NewEvent",
    "RawEvent",
    "TypeRegistry",
    "Upcaster",
    "default_registry",
    "upcasts",
]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the data of schema version N into the data of version N + 1."""

_UPCAST_MARK = "__eventkeep_upcasts_from__"

UpcasterMethod: TypeAlias = "staticmethod[[dict[str, Any]], dict[str, Any]]"
"""What :func:`upcasts` turns an upcaster into: a static method of the event class."""


def upcasts(from_version: int) -> Callable[[Upcaster], UpcasterMethod]:
    """Mark a function in an event class body as the upcaster from ``from_version`` to the next.

    The function takes the stored data (a dict) and returns the data of the next version::

        class Deposited(Event):
            __schema_version__ = 2
            amount: Decimal
            currency: str

            @upcasts(1)
            def add_currency(data: dict[str, Any]) -> dict[str, Any]:
                return {**data, "currency": "EUR"}
    """
    if not isinstance(from_version, int) or isinstance(from_version, bool) or from_version < 1:
        raise ConfigurationError(f"upcasts() takes a schema version >= 1, got {from_version!r}")

    def mark(fn: Upcaster) -> UpcasterMethod:
        setattr(fn, _UPCAST_MARK, from_version)
        return staticmethod(fn)

    return mark


# Tells type checkers that subclasses are frozen too (msgspec inherits frozen at runtime).
@dataclass_transform(frozen_default=True, field_specifiers=(msgspec.field,))
class Event(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base class of typed, immutable domain events (named in the past tense)."""

    __event_type__: ClassVar[str]
    __schema_version__: ClassVar[int] = 1
    __aliases__: ClassVar[tuple[str, ...]] = ()
    __upcasters__: ClassVar[Mapping[int, Upcaster]] = {}
    __abstract__: ClassVar[bool] = False
    __tags__: ClassVar[tuple[str, ...]] = ()
    """Templates of the event's tags (``str.format`` naming its fields), e.g.
    ``("student:{student_id}",)``; see :mod:`eventkeep.store.dcb`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        abstract = bool(cls.__dict__.get("__abstract__", False))
        cls.__abstract__ = abstract
        if "__event_type__" not in cls.__dict__:
            cls.__event_type__ = cls.__name__
        if "__aliases__" not in cls.__dict__:
            cls.__aliases__ = ()
        cls.__upcasters__ = _collect_upcasters(cls)
        cls.__tags__ = _check_tag_templates(cls)
        check_personal_fields(cls)  # a bad Personal marker fails here, not on first append
        if not abstract:
            default_registry.register(cls)


def _collect_upcasters(cls: type[Event]) -> dict[int, Upcaster]:
    version = cls.__dict__.get("__schema_version__", 1)
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or not 1 <= version <= MAX_SCHEMA_VERSION
    ):
        raise ConfigurationError(
            f"{cls.__qualname__}.__schema_version__ must be an int from 1 to "
            f"{MAX_SCHEMA_VERSION}, got {version!r}"
        )
    cls.__schema_version__ = version
    steps: dict[int, Upcaster] = {}
    for name, member in cls.__dict__.items():
        fn = member.__func__ if isinstance(member, staticmethod) else member
        step = getattr(fn, _UPCAST_MARK, None)
        if step is None:
            continue
        if step in steps:
            raise ConfigurationError(
                f"{cls.__qualname__}: two upcasters from schema version {step} ({name})"
            )
        if step >= version:
            raise ConfigurationError(
                f"{cls.__qualname__}: upcaster {name} starts at version {step}, "
                f"but the class is at schema version {version}"
            )
        steps[step] = fn
    missing = [v for v in range(1, version) if v not in steps]
    if missing:
        chain = ", ".join(f"{v} -> {v + 1}" for v in missing)
        raise ConfigurationError(
            f"{cls.__qualname__} is at schema version {version} but has no upcaster for {chain}; "
            f"add a function decorated with @upcasts(N) for each missing step"
        )
    return steps


def _check_tag_templates(cls: type[Event]) -> tuple[str, ...]:
    """A class's ``__tags__``, checked when it is defined: str templates naming its fields."""
    templates = getattr(cls, "__tags__", ())
    if isinstance(templates, str) or not isinstance(templates, tuple | list):
        raise ConfigurationError(
            f"{cls.__qualname__}.__tags__ must be a tuple of str templates, got {templates!r}"
        )
    # msgspec sets __struct_fields__ after __init_subclass__: the annotations name the fields.
    fields = {
        name
        for klass in cls.__mro__
        for name in getattr(klass, "__annotations__", {})
        if not name.startswith("__")
    }
    for template in templates:
        if not isinstance(template, str):
            raise ConfigurationError(
                f"{cls.__qualname__}.__tags__ holds {template!r}, not a str template"
            )
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
        except ValueError as exc:
            raise ConfigurationError(
                f"{cls.__qualname__}.__tags__: {template!r} is not a valid template ({exc})"
            ) from None
        for name in names:
            if name.split(".")[0].split("[")[0] not in fields:
                raise ConfigurationError(
                    f"{cls.__qualname__}.__tags__: {template!r} names {name!r}, "
                    "which is not a field of the class"
                )
    return tuple(templates)


class RawEvent(msgspec.Struct, frozen=True, gc=False):
    """An untyped event: a type name and a JSON-compatible mapping.

    Appending one needs no class (the CLI does this); reading an event whose type is not
    registered yields a ``RawEvent`` instead of raising.
    """

    type: str
    data: dict[str, Any]
    schema_version: int = 1


class NewEvent(msgspec.Struct, frozen=True, gc=False):
    """An event to append together with its own event id, metadata and tags.

    Plain ``Event`` and ``RawEvent`` instances can be appended as they are; wrap one in
    ``NewEvent`` to fix its event id (for idempotent retries), attach per-event metadata, or
    attach tags (strings, validated like stream ids; see :mod:`eventkeep.store.dcb`).
    """

    event: Event | RawEvent
    event_id: UUID | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | tuple[str, ...] | None = None


class TypeRegistry:
    """Maps stable type names (and aliases) to event classes."""

    def __init__(self, classes: Iterable[type[Event]] = ()) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, type[Event]] = {}
        for cls in classes:
            self.register(cls)

    def register(self, cls: type[Event]) -> type[Event]:
        """Register ``cls`` under its type name and aliases; a conflicting name is an error."""
        if not (isinstance(cls, type) and issubclass(cls, Event)):
            raise ConfigurationError(f"only Event subclasses can be registered, got {cls!r}")
        names = (cls.__event_type__, *cls.__aliases__)
        for name in names:
            check_name(
                name, what=f"event type name of {cls.__qualname__}", error=ConfigurationError
            )
        with self._lock:
            for name in names:
                other = self._by_name.get(name)
                if other is not None and not _same_class(other, cls):
                    raise ConfigurationError(
                        f"event type name {name!r} is claimed by both "
                        f"{_where(other)} and {_where(cls)}; set __event_type__ on one of them"
                    )
            for name in names:
                self._by_name[name] = cls
        return cls

    def unregister(self, cls: type[Event]) -> None:
        with self._lock:
            for name in (cls.__event_type__, *cls.__aliases__):
                if self._by_name.get(name) is cls:
                    del self._by_name[name]

    def lookup(self, type_name: str) -> type[Event] | None:
        return self._by_name.get(type_name)

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._by_name

    def names(self) -> list[str]:
        return sorted(self._by_name)


def _same_class(a: type[Event], b: type[Event]) -> bool:
    """A class defined again (module reloaded, a test re-run) may take its own name back."""
    return a is b or (a.__module__ == b.__module__ and a.__qualname__ == b.__qualname__)


def _where(cls: type[Event]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


default_registry = TypeRegistry()
"""The registry every non-abstract ``Event`` subclass joins when it is defined."""
