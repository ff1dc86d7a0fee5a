"""Class-based aggregates: commands that record events, handlers that apply them.

::

    class BankAccount(eventkeep.Aggregate):
        balance: Decimal = Decimal(0)

        def withdraw(self, amount: Decimal) -> None:          # a command: checks, then records
            if amount > self.balance:
                raise InsufficientFundsError(self.balance, amount)
            self.record(Withdrawn(amount=amount))

        @eventkeep.applies(Withdrawn)                          # the only place state changes
        def _withdrawn(self, event: Withdrawn) -> None:
            self.balance -= event.amount

Deciding and applying are kept apart on purpose: a command method validates and calls
:meth:`Aggregate.record`; a handler registered with :func:`applies` changes the state and is the
very same function a load replays. Handlers are collected once, when the class is defined, into a
dict keyed by event class, so replay is a dict lookup and a call per event. No metaclass, no copy.

Rules checked when the class is defined: one handler per event type per class (a subclass may
override), handled and ignored types do not overlap, state fields have no shared mutable
defaults. An event type the aggregate neither handles nor lists in ``__ignored_events__`` is a
``ConfigurationError`` when it is recorded or loaded, never a silently skipped event.

State fields are the class's annotated public attributes; they are what a snapshot holds.
An aggregate is constructed as ``cls(id)``: give fields class-level defaults (immutable values),
or set them in an ``__init__(self, id)`` that calls ``super().__init__(id)``.
"""

from __future__ import annotations

import copy
import inspect
import threading
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Self, TypeVar, cast

import msgspec

from eventkeep.domain.context import _current
from eventkeep.domain.snapshot_policy import SnapshotPolicy, as_policy, state_struct
from eventkeep.errors import ConfigurationError, ValidationError
from eventkeep.store.codec import new_event_uuid
from eventkeep.store.events import Event, NewEvent, RawEvent
from eventkeep.store.recorded import RecordedEvent
from eventkeep.store.validation import check_name

__all__ = ["Aggregate", "applies", "snapshot_aggregate_for", "snapshot_categories"]

Handler = Callable[[Any, Any], None]
"""A handler as stored in ``__handlers__``: ``handler(aggregate, event)``."""

H = TypeVar("H", bound=Callable[..., Any])

_APPLIES = "__eventkeep_applies__"
_current_context = _current.get  # context.current_context() without the extra call (record())
_MUTABLE_DEFAULTS = (list, dict, set, bytearray)


def applies(*event_types: type[Event]) -> Callable[[H], H]:
    """Register the decorated method as the handler of ``event_types`` on its aggregate class.

    The handler takes the event and changes the aggregate's state; it must not check rules,
    raise for domain reasons or do I/O: it runs for every stored event on every load.
    """
    if not event_types:
        raise ConfigurationError("applies() needs at least one Event class")
    for event_type in event_types:
        if not (isinstance(event_type, type) and issubclass(event_type, Event)):
            raise ConfigurationError(f"applies() takes Event classes, got {event_type!r}")

    def mark(fn: H) -> H:
        setattr(fn, _APPLIES, (*getattr(fn, _APPLIES, ()), *event_types))
        return fn

    return mark


def _ignore(aggregate: Any, event: Any) -> None:
    """The handler of a deliberately ignored event type."""


class Aggregate:
    """Base class of class-based aggregates: a consistency boundary rebuilt from its events.

    Class attributes a subclass may set:

    - ``__category__``: the stream category, ``<category>-<id>`` (default: the class name in
      lower case, e.g. ``bankaccount``).
    - ``__ignored_events__``: event classes or type names deliberately skipped on replay.
    - ``__snapshot_every__``: a snapshot policy (an int N or a policy object), None for none.
    - ``__state_version__``: the schema version of the state; raise it whenever the state fields
      or their meaning change, and older snapshots are ignored and rewritten.
    - ``__state_type__``: the state's type name in snapshots (default: the class name).
    """

    __category__: ClassVar[str] = "aggregate"
    __ignored_events__: ClassVar[tuple[type[Event] | str, ...]] = ()
    __snapshot_every__: ClassVar[int | SnapshotPolicy | None] = None
    __state_version__: ClassVar[int] = 1
    __state_type__: ClassVar[str] = "Aggregate"
    __abstract__: ClassVar[bool] = True
    __handlers__: ClassVar[dict[type[Any], Handler]] = {}
    __ignored_names__: ClassVar[frozenset[str]] = frozenset()
    __state_fields__: ClassVar[tuple[str, ...]] = ()
    __snapshot_policy__: ClassVar[SnapshotPolicy | None] = None

    id: str
    """The aggregate's id; its stream is ``<category>-<id>``."""
    version: int
    """The number of events applied: stored ones plus those recorded and not yet saved."""

    _ek_pending: list[NewEvent]
    _ek_stored_version: int
    _ek_snapshot_version: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__abstract__ = bool(cls.__dict__.get("__abstract__", False))
        if "__category__" not in cls.__dict__:
            cls.__category__ = cls.__name__.lower()
        check_category(cls.__category__, what=f"{cls.__qualname__}.__category__")
        if "__state_type__" not in cls.__dict__:
            cls.__state_type__ = cls.__name__
        check_name(cls.__state_type__, what="__state_type__", error=ConfigurationError)
        version = cls.__state_version__
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ConfigurationError(
                f"{cls.__qualname__}.__state_version__ must be an int >= 1, got {version!r}"
            )
        cls.__snapshot_policy__ = as_policy(
            cls.__snapshot_every__, what=f"{cls.__qualname__}.__snapshot_every__"
        )
        cls.__ignored_names__ = _collect_ignored(cls)
        cls.__handlers__ = _collect_handlers(cls)
        cls.__state_fields__ = _state_fields(cls)
        if cls.__snapshot_policy__ is not None and not cls.__abstract__:
            _register_snapshotted(cls)

    def __init__(self, id: str) -> None:
        if not isinstance(id, str) or not id:
            raise ValidationError(f"an aggregate id must be a non-empty str, got {id!r}")
        self.id = id
        self.version = 0
        self._ek_pending = []
        self._ek_stored_version = 0
        self._ek_snapshot_version = 0

    # -- commands record events ---------------------------------------------------------------

    def record(self, event: Event, *, metadata: Mapping[str, Any] | None = None) -> None:
        """Apply ``event`` through its handler and keep it to be saved.

        The event's metadata is the active command context's (correlation and causation ids)
        merged with ``metadata``. It gets its event id now, so that re-sending a save whose
        outcome is unknown is idempotent.
        """
        if not isinstance(event, Event):
            raise ValidationError(
                f"{type(self).__qualname__}.record() takes an eventkeep.Event, got {event!r:.80}"
            )
        handler = self.__handlers__.get(type(event)) or self._ek_missing_handler(event, None)
        handler(self, event)
        self.version += 1
        context = _current_context()
        meta = context.metadata() if context is not None else None
        if metadata:
            meta = {**meta, **metadata} if meta else dict(metadata)
        self._ek_pending.append(NewEvent(event, new_event_uuid(), meta))

    @property
    def pending_events(self) -> list[Event]:
        """Events recorded since the aggregate was loaded or last saved."""
        return [cast(Event, item.event) for item in self._ek_pending]

    # -- replay: the hot path -----------------------------------------------------------------

    def _ek_replay(self, records: Iterable[RecordedEvent]) -> int:
        """Apply stored events in order; returns how many were applied."""
        handlers = type(self).__handlers__
        count = 0
        last: RecordedEvent | None = None
        for last in records:
            event = last.event
            handler = handlers.get(type(event))
            if handler is None:
                handler = self._ek_missing_handler(event, last)
            handler(self, event)
            count += 1
        if last is not None:
            self.version = self._ek_stored_version = last.version
        return count

    @classmethod
    def _ek_missing_handler(cls, event: Event | RawEvent, where: RecordedEvent | None) -> Handler:
        """Find a handler through the event's base classes (and cache it), or explain."""
        found = f" at {where.stream_id}@{where.version}" if where is not None else ""
        if isinstance(event, RawEvent):
            if event.type in cls.__ignored_names__:
                return _ignore
            raise ConfigurationError(
                f"{cls.__qualname__} cannot apply the event {event.type!r}{found}: no Event "
                f"class is registered under that type name; define one, or list {event.type!r} "
                "in __ignored_events__ to skip it deliberately"
            )
        event_type = type(event)
        handlers = cls.__handlers__
        for base in event_type.__mro__[1:]:
            handler = handlers.get(base)
            if handler is not None:
                handlers[event_type] = handler
                return handler
        names = (event_type.__event_type__, *event_type.__aliases__)
        if cls.__ignored_names__.intersection(names):
            handlers[event_type] = _ignore
            return _ignore
        raise ConfigurationError(
            f"{cls.__qualname__} has no handler for the event {event_type.__event_type__!r} "
            f"({event_type.__qualname__}){found}; add a method decorated with "
            f"@applies({event_type.__name__}), or list it in __ignored_events__ to skip it"
        )

    # -- state, for snapshots and history -----------------------------------------------------

    def _ek_state_value(self) -> Any:
        """The state a snapshot holds: the declared state fields that are set."""
        fields = self.__state_fields__
        extra = [
            name
            for name in vars(self)
            if name not in fields and not name.startswith("_") and name not in ("id", "version")
        ]
        if extra:
            raise ConfigurationError(
                f"{type(self).__qualname__} has state that is not a declared field "
                f"({', '.join(sorted(extra))}); annotate it in the class body so that snapshots "
                "hold it"
            )
        missing = _MISSING
        values = {name: getattr(self, name, missing) for name in fields}
        return {name: value for name, value in values.items() if value is not missing}

    def _ek_set_state(self, state: Any) -> None:
        for name in self.__state_fields__:
            value = getattr(state, name)
            if value is not _UNSET:
                setattr(self, name, value)

    @classmethod
    def _ek_state_schema(cls) -> Any:
        """The type a snapshot's JSON decodes into."""
        return state_struct(cls)

    def _ek_history_copy(self) -> Self:
        """An independent copy of the aggregate, for :meth:`Repository.history`."""
        duplicate = copy.deepcopy(self)
        duplicate._ek_pending = []
        return duplicate

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}(id={self.id!r}, version={self.version})"


_MISSING: Any = object()
_UNSET: Any = msgspec.UNSET


def check_category(category: Any, *, what: str, separator: str = "-") -> str:
    check_name(category, what=what, error=ConfigurationError)
    if separator in category:
        raise ConfigurationError(
            f"{what} {category!r} must not contain the separator {separator!r}: streams are "
            f"named <category>{separator}<id> and listed by that prefix"
        )
    return str(category)


def _collect_handlers(cls: type[Aggregate]) -> dict[type[Any], Handler]:
    """Event class -> handler, from every class in the MRO (subclasses override by name)."""
    by_type: dict[type[Any], str] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, Aggregate)):
            continue
        own: dict[type[Any], str] = {}
        for name, member in klass.__dict__.items():
            for event_type in getattr(member, _APPLIES, ()):
                if event_type in own:
                    raise ConfigurationError(
                        f"{klass.__qualname__}: both {own[event_type]}() and {name}() apply "
                        f"{event_type.__qualname__}; keep one handler per event type"
                    )
                own[event_type] = name
        by_type.update(own)
    handlers: dict[type[Any], Handler] = {}
    for event_type, name in by_type.items():
        handler = getattr(cls, name)
        if not callable(handler):
            raise ConfigurationError(f"{cls.__qualname__}.{name} is not a method")
        handlers[event_type] = handler
    for item in cls.__ignored_events__:
        if isinstance(item, type) and item in handlers:
            raise ConfigurationError(
                f"{cls.__qualname__} both handles and ignores {item.__qualname__}"
            )
        if isinstance(item, type):
            handlers[item] = _ignore
    return handlers


def _collect_ignored(cls: type[Aggregate]) -> frozenset[str]:
    items = cls.__ignored_events__
    if isinstance(items, str | type) or not isinstance(items, tuple | list | frozenset | set):
        raise ConfigurationError(
            f"{cls.__qualname__}.__ignored_events__ must be a tuple of Event classes or type "
            f"names, got {items!r}"
        )
    names: set[str] = set()
    for item in items:
        if isinstance(item, str):
            names.add(check_name(item, what="ignored event type", error=ConfigurationError))
        elif isinstance(item, type) and issubclass(item, Event):
            names.update((item.__event_type__, *item.__aliases__))
        else:
            raise ConfigurationError(
                f"{cls.__qualname__}.__ignored_events__ takes Event classes or type names, "
                f"got {item!r}"
            )
    return frozenset(names)


def _state_fields(cls: type[Aggregate]) -> tuple[str, ...]:
    fields: dict[str, None] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, Aggregate)) or klass is Aggregate:
            continue
        for name, annotation in inspect.get_annotations(klass).items():
            if name.startswith("_") or name in ("id", "version") or _is_classvar(annotation):
                continue
            default = klass.__dict__.get(name, _MISSING)
            if isinstance(default, _MUTABLE_DEFAULTS):
                raise ConfigurationError(
                    f"{klass.__qualname__}.{name} has a mutable default ({type(default).__name__})"
                    f" that every instance would share; set it in __init__ instead"
                )
            fields[name] = None
    return tuple(fields)


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))
    return annotation is ClassVar or typing.get_origin(annotation) is ClassVar


# -- aggregate types with snapshots, by category (what ``eventkeep snapshots rebuild`` finds) ----

_registry_lock = threading.Lock()
_snapshotted: dict[str, type[Aggregate]] = {}


def _register_snapshotted(cls: type[Aggregate]) -> None:
    """Two aggregate types snapshotting the same streams would overwrite each other's snapshots;
    that is refused when the second is defined."""
    with _registry_lock:
        other = _snapshotted.get(cls.__category__)
        if other is not None and (other.__module__, other.__qualname__) != (
            cls.__module__,
            cls.__qualname__,
        ):
            raise ConfigurationError(
                f"{cls.__module__}.{cls.__qualname__} and {other.__module__}."
                f"{other.__qualname__} both snapshot the category {cls.__category__!r}; give one "
                "of them another __category__ or no snapshot policy"
            )
        _snapshotted[cls.__category__] = cls


def snapshot_aggregate_for(category: str) -> type[Aggregate] | None:
    """The aggregate type (defined so far) that snapshots ``category``, if any."""
    return _snapshotted.get(category)


def snapshot_categories() -> list[str]:
    """Categories of the aggregate types with a snapshot policy defined so far."""
    return sorted(_snapshotted)
