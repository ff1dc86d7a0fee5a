"""The event classes the contract suite appends and reads back.

They register under type names prefixed ``contract.`` so that they never clash with an
application's own classes in the default registry. A store under test must decode through a
registry that holds them: the default registry does.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import msgspec

from eventkeep.store.events import Event, upcasts
from eventkeep.store.personal import Personal

__all__ = [
    "Address",
    "Audited",
    "Color",
    "ContractEvent",
    "CourseOpened",
    "CustomerRegistered",
    "Deposited",
    "EmailChanged",
    "Enrolled",
    "Level",
    "Line",
    "Noted",
    "Point",
    "PriceChanged",
    "Renamed",
    "Sampled",
    "ValuesRecorded",
    "Withdrawn",
]


class ContractEvent(Event):
    """An abstract base: it has no type name of its own and cannot be appended."""

    __abstract__ = True


class Deposited(ContractEvent):
    __event_type__ = "contract.Deposited"

    amount: Decimal


class Withdrawn(ContractEvent):
    __event_type__ = "contract.Withdrawn"

    amount: Decimal


class Renamed(ContractEvent):
    """Stored under ``contract.NameChanged`` by older code: the alias still decodes to it."""

    __event_type__ = "contract.Renamed"
    __aliases__ = ("contract.NameChanged",)

    name: str


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Address(msgspec.Struct, frozen=True):
    street: str
    city: str
    postcode: str | None = None


class Line(msgspec.Struct, frozen=True):
    sku: str
    quantity: int
    price: Decimal


class ValuesRecorded(ContractEvent):
    """Every kind of value an event must round-trip losslessly."""

    __event_type__ = "contract.ValuesRecorded"

    amount: Decimal
    at: datetime
    ref: UUID
    color: Color
    level: Level
    address: Address
    lines: list[Line]
    tags: list[str]
    ratio: float
    count: int
    flag: bool
    note: str | None = None
    scores: dict[str, list[int]] = msgspec.field(default_factory=dict)


class PriceChanged(ContractEvent):
    """At schema version 3; versions 1 and 2 are upcast on read.

    - version 1: ``{"price": "9.99"}``
    - version 2: adds ``currency`` (old events were in EUR)
    - version 3: ``price`` became ``amount``
    """

    __event_type__ = "contract.PriceChanged"
    __schema_version__ = 3

    amount: Decimal
    currency: str

    @upcasts(1)
    def add_currency(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "currency": "EUR"}

    @upcasts(2)
    def rename_price(data: dict[str, Any]) -> dict[str, Any]:
        rest = {k: v for k, v in data.items() if k != "price"}
        return {**rest, "amount": data["price"]}


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float


class Sampled(ContractEvent):
    """Holds floats inside a struct field, a list and a dataclass (for the NaN checks)."""

    __event_type__ = "contract.Sampled"

    value: float
    series: list[float] = msgspec.field(default_factory=list)
    point: Point | None = None


class Noted(ContractEvent):
    """Typed fields that hold untyped JSON (``Any``) beside declared bytes, sets and datetimes."""

    __event_type__ = "contract.Noted"

    details: Any = None
    blob: bytes = b""
    labels: frozenset[str] = frozenset()
    keyed: dict[int, str] = msgspec.field(default_factory=dict)
    local: datetime | None = None


class Audited(ContractEvent):
    """An event with no fields."""

    __event_type__ = "contract.Audited"


class Enrolled(ContractEvent):
    """Tagged from its fields: the DCB cases (``contract_dcb``)."""

    __event_type__ = "contract.Enrolled"
    __tags__ = ("student:{student}", "course:{course}")
    student: str
    course: str


class CourseOpened(ContractEvent):
    __event_type__ = "contract.CourseOpened"
    __tags__ = ("course:{course}",)
    course: str
    capacity: int


class CustomerRegistered(ContractEvent):
    """Personal data of the subject ``customer_id`` (see docs/erasure.md)."""

    __event_type__ = "contract.CustomerRegistered"
    __tags__ = ("customer:{customer_id}",)

    customer_id: str
    email: Annotated[str, Personal(subject="customer_id")]
    birth_year: Annotated[int, Personal(subject="customer_id", redacted=0)] = 1970
    phone: Annotated[str | None, Personal(subject="customer_id")] = None
    plan: str = "basic"


class EmailChanged(ContractEvent):
    __event_type__ = "contract.EmailChanged"

    customer_id: str
    email: Annotated[str, Personal(subject="customer_id")]
