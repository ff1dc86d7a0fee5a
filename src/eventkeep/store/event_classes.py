"""What the codec needs to know about an event class, worked out once per class.

Appending a typed event is the hot path: every event an aggregate records goes through
:meth:`eventkeep.store.codec.Codec.prepare`. Which checks an event of a class needs depends on
the class alone (can it hold a float, an ``Any`` field, a personal field, nesting deeper than
:data:`MAX_DEPTH`?), so :func:`class_plan` answers those questions once and caches the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import msgspec

from eventkeep.errors import ValidationError
from eventkeep.store.events import Event
from eventkeep.store.personal import PersonalField, personal_fields

__all__ = ["MAX_DEPTH", "ClassPlan", "class_plan", "nested_too_deeply"]

MAX_DEPTH = 128
"""Deepest nesting of objects and arrays in one event's data or metadata."""


class ClassPlan(NamedTuple):
    """The checks an event of one class needs on append."""

    type_name: str
    schema_version: int
    may_hold_float: bool
    """A field, however deeply nested, may hold a float (so NaN and infinity are looked for)."""
    may_nest_too_deeply: bool
    """The class's types do not bound the nesting depth of its JSON under MAX_DEPTH."""
    untyped: tuple[str, ...]
    """Fields declared ``Any`` somewhere in their type."""
    personal: tuple[PersonalField, ...]
    tagged: bool
    """The class declares ``__tags__`` templates."""


_PLANS: dict[type, ClassPlan] = {}


def class_plan(cls: type[Event]) -> ClassPlan:
    """The plan for events of ``cls`` (cached; an abstract class is refused, never cached)."""
    plan = _PLANS.get(cls)
    if plan is not None:
        return plan
    if cls.__abstract__:
        raise ValidationError(f"{cls.__qualname__} is abstract and cannot be appended")
    try:
        info: msgspec.inspect.Type | None = msgspec.inspect.type_info(cls)
    except (TypeError, ValueError):  # a type msgspec cannot describe: check everything
        info = None
    plan = ClassPlan(
        cls.__event_type__,
        cls.__schema_version__,
        _may_hold_float(cls),
        info is None or _static_depth(info, set()) is None,
        _untyped_fields(cls),
        personal_fields(cls),
        bool(cls.__tags__),
    )
    _PLANS[cls] = plan
    return plan


def _static_depth(info: msgspec.inspect.Type, open_: set[type]) -> int | None:
    """How deeply JSON of type ``info`` can nest, or None if its types do not bound it (Any,
    custom types, recursive classes) or the bound is over MAX_DEPTH."""
    ins = msgspec.inspect
    depth: int | None
    if isinstance(
        info, ins.StructType | ins.DataclassType | ins.TypedDictType | ins.NamedTupleType
    ):
        if info.cls in open_:
            return None  # recursive: unbounded
        open_.add(info.cls)
        depth = _deepest([field.type for field in info.fields], open_)
        open_.discard(info.cls)
        depth = None if depth is None else depth + 1
    elif isinstance(info, ins.UnionType):
        depth = _deepest(list(info.types), open_)
    elif isinstance(info, ins.TupleType):
        inner = _deepest(list(info.item_types), open_)
        depth = None if inner is None else inner + 1
    elif isinstance(info, ins.ListType | ins.SetType | ins.FrozenSetType | ins.VarTupleType):
        inner = _static_depth(info.item_type, open_)
        depth = None if inner is None else inner + 1
    elif isinstance(info, ins.DictType | ins.FrozenDictType):
        inner = _deepest([info.key_type, info.value_type], open_)
        depth = None if inner is None else inner + 1
    elif isinstance(info, ins.Metadata):
        depth = _static_depth(info.type, open_)
    elif isinstance(info, (*_FLOAT_FREE_SCALARS, ins.FloatType)):
        depth = 0
    else:  # Any, custom types, anything unknown
        return None
    return depth if depth is not None and depth <= MAX_DEPTH else None


def _deepest(infos: list[msgspec.inspect.Type], open_: set[type]) -> int | None:
    deepest = 0
    for info in infos:
        depth = _static_depth(info, open_)
        if depth is None:
            return None
        deepest = max(deepest, depth)
    return deepest


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
    return _somewhere_in(
        info,
        lambda leaf: (
            isinstance(leaf, ins.FloatType | ins.AnyType | ins.CustomType)
            or not isinstance(leaf, _FLOAT_FREE_SCALARS)
        ),  # anything unknown: assume it might
        seen,
    )


def _somewhere_in(
    info: msgspec.inspect.Type, leaf: Callable[[msgspec.inspect.Type], bool], seen: set[type]
) -> bool:
    """True if ``leaf`` holds for some type that ``info`` is built of (its fields, members,
    items, keys and values, recursively; each class once)."""
    ins = msgspec.inspect
    if isinstance(
        info, ins.StructType | ins.DataclassType | ins.TypedDictType | ins.NamedTupleType
    ):
        if info.cls in seen:
            return False
        seen.add(info.cls)
        return any(_somewhere_in(field.type, leaf, seen) for field in info.fields)
    if isinstance(info, ins.UnionType):
        return any(_somewhere_in(member, leaf, seen) for member in info.types)
    if isinstance(info, ins.TupleType):
        return any(_somewhere_in(member, leaf, seen) for member in info.item_types)
    if isinstance(info, ins.ListType | ins.SetType | ins.FrozenSetType | ins.VarTupleType):
        return _somewhere_in(info.item_type, leaf, seen)
    if isinstance(info, ins.DictType | ins.FrozenDictType):
        return _somewhere_in(info.key_type, leaf, seen) or _somewhere_in(
            info.value_type, leaf, seen
        )
    if isinstance(info, ins.Metadata):
        return _somewhere_in(info.type, leaf, seen)
    return leaf(info)


_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def nested_too_deeply(out: bytes) -> bool:
    """True if the JSON ``out`` nests objects and arrays deeper than MAX_DEPTH."""
    if out.count(b"[") + out.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for token in _STRUCTURE.findall(out):
        first = token[0]
        if first == 0x22:  # a string: brackets inside it do not count
            continue
        if first in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _untyped_fields(cls: type) -> tuple[str, ...]:
    """The names of the fields of ``cls`` whose declared type holds ``Any`` somewhere."""
    known = _UNTYPED.get(cls)
    if known is None:
        try:
            info = msgspec.inspect.type_info(cls)
            fields = getattr(info, "fields", ())
            known = tuple(f.name for f in fields if _holds_any(f.type, set()))
        except (TypeError, ValueError):
            known = ()
        _UNTYPED[cls] = known
    return known


_UNTYPED: dict[type, tuple[str, ...]] = {}


def _holds_any(info: msgspec.inspect.Type, seen: set[type]) -> bool:
    return _somewhere_in(info, lambda leaf: isinstance(leaf, msgspec.inspect.AnyType), seen)
