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

from eventkeep.domain.aggregate import Aggregate, applies
from eventkeep.domain.conflicts import ConflictCheck, conflicts_by_key
from eventkeep.domain.context import CommandContext, command_context, current_context
from eventkeep.domain.decider import Decider, DeciderAggregate
from eventkeep.domain.decisions import (
    DecisionModel,
    DecisionProjection,
    DecisionState,
    build_decision_model,
    execute_decision,
)
from eventkeep.domain.repository import Repository
from eventkeep.domain.snapshots import Every, RebuildReport, SnapshotPolicy
from eventkeep.domain.temporal import HistoryEntry
from eventkeep.errors import (
    AnchorError,
    AppendConditionError,
    BackendUnavailableError,
    CheckpointConflictError,
    ConcurrencyError,
    ConfigurationError,
    DuplicateEventIdError,
    EventkeepError,
    EventTooLargeError,
    IntegrityError,
    KeyConflictError,
    NotFoundError,
    ProjectionFailedError,
    SchemaVersionError,
    SerializationError,
    StreamDeletedError,
    ValidationError,
)
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
from eventkeep.store.anchors import Anchor, AnchorKey, load_key, read_anchor, read_key
from eventkeep.store.base import Transaction
from eventkeep.store.dcb import AppendCondition, Query, QueryItem, QueryResult
from eventkeep.store.events import (
    Event,
    NewEvent,
    RawEvent,
    TypeRegistry,
    default_registry,
    upcasts,
)
from eventkeep.store.hashing import BrokenLink, VerifyReport
from eventkeep.store.lifecycle import Operation, Removal, Retention
from eventkeep.store.lifecycle_store import CompactReport
from eventkeep.store.personal import REDACTED, Personal
from eventkeep.store.recorded import RecordedEvent
from eventkeep.store.shredding import ForgetReport, ForgottenSubject, KeyStore, MemoryKeyStore
from eventkeep.urls import DEFAULT_STORE_URL, open_store

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "DEFAULT_STORE_URL",
    "NO_STREAM",
    "REDACTED",
    "STREAM_EXISTS",
    "Aggregate",
    "Anchor",
    "AnchorError",
    "AnchorKey",
    "AppendCondition",
    "AppendConditionError",
    "AppendResult",
    "BackendUnavailableError",
    "BrokenLink",
    "CheckpointConflictError",
    "CommandContext",
    "CompactReport",
    "ConcurrencyError",
    "ConfigurationError",
    "ConflictCheck",
    "Decider",
    "DeciderAggregate",
    "DecisionModel",
    "DecisionProjection",
    "DecisionState",
    "DuplicateEventIdError",
    "Event",
    "EventStore",
    "EventTooLargeError",
    "EventkeepError",
    "Every",
    "ExpectedVersion",
    "ForgetReport",
    "ForgottenSubject",
    "HistoryEntry",
    "IntegrityError",
    "KeyConflictError",
    "KeyStore",
    "MemoryKeyStore",
    "NewEvent",
    "NotFoundError",
    "Operation",
    "Personal",
    "ProjectionFailedError",
    "Query",
    "QueryItem",
    "QueryResult",
    "RawEvent",
    "RebuildReport",
    "RecordedEvent",
    "Removal",
    "Repository",
    "Retention",
    "SchemaVersionError",
    "SerializationError",
    "SnapshotPolicy",
    "StoreStats",
    "StreamAppend",
    "StreamDeletedError",
    "StreamInfo",
    "Transaction",
    "TypeRegistry",
    "ValidationError",
    "VerifyReport",
    "applies",
    "build_decision_model",
    "command_context",
    "conflicts_by_key",
    "current_context",
    "default_registry",
    "execute_decision",
    "load_key",
    "open_store",
    "read_anchor",
    "read_key",
    "upcasts",
]
