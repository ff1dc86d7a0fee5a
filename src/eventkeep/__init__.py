"""eventkeep: event sourcing for Python, on an embedded SQLite store or PostgreSQL.

import eventkeep
from decimal import Decimal

class Deposited(eventkeep.Event):
    amount: Decimal

store = eventkeep.open_store("sqlite:///bank.db")
store.append("account-1", [Deposited(amount=Decimal("10.00"))], expected_version=0)
for recorded in store.read_stream("account-1"):
    print(recorded.version, recorded.event)
"""

from eventkeep.errors import (
    BackendUnavailableError,
    ConcurrencyError,
    ConfigurationError,
    DuplicateEventIdError,
    EventkeepError,
    EventTooLargeError,
    IntegrityError,
    NotFoundError,
    SchemaVersionError,
    SerializationError,
    ValidationError,
)
from eventkeep.events import Event, NewEvent, RawEvent, TypeRegistry, default_registry, upcasts
from eventkeep.hashing import BrokenLink, VerifyReport
from eventkeep.recorded import RecordedEvent
from eventkeep.store import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    EventStore,
    ExpectedVersion,
    StoreStats,
    StreamAppend,
    StreamInfo,
)
from eventkeep.urls import DEFAULT_STORE_URL, open_store

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "DEFAULT_STORE_URL",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "BackendUnavailableError",
    "BrokenLink",
    "ConcurrencyError",
    "ConfigurationError",
    "DuplicateEventIdError",
    "Event",
    "EventStore",
    "EventTooLargeError",
    "EventkeepError",
    "ExpectedVersion",
    "IntegrityError",
    "NewEvent",
    "NotFoundError",
    "RawEvent",
    "RecordedEvent",
    "SchemaVersionError",
    "SerializationError",
    "StoreStats",
    "StreamAppend",
    "StreamInfo",
    "TypeRegistry",
    "ValidationError",
    "VerifyReport",
    "default_registry",
    "open_store",
    "upcasts",
]
