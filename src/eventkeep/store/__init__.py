"""The store core: events, the codec, the hash chain, the store and transaction interface, and
the append planner. Backends build on it; the domain layer (:mod:`eventkeep.domain`) and
projections use it through :class:`EventStore` and :class:`Transaction`.
"""

from eventkeep.store.base import EventStore, Transaction, Writer
from eventkeep.store.types import (
    ANY,
    NO_STREAM,
    PAGE_SIZE,
    POLL_INTERVALS,
    STREAM_EXISTS,
    AppendItem,
    AppendResult,
    Expected,
    ExpectedVersion,
    PreparedAppend,
    Snapshot,
    StorageCheck,
    StoredIdentity,
    StoreStats,
    StreamAppend,
    StreamInfo,
    concurrency_error,
    expected_matches,
    replayed_result,
)

__all__ = [
    "ANY",
    "NO_STREAM",
    "PAGE_SIZE",
    "POLL_INTERVALS",
    "STREAM_EXISTS",
    "AppendItem",
    "AppendResult",
    "EventStore",
    "Expected",
    "ExpectedVersion",
    "PreparedAppend",
    "Snapshot",
    "StorageCheck",
    "StoreStats",
    "StoredIdentity",
    "StreamAppend",
    "StreamInfo",
    "Transaction",
    "Writer",
    "concurrency_error",
    "expected_matches",
    "replayed_result",
]
