"""The two abstract halves of every backend: ``EventStore``, composed of one part per concern,
and its ``Transaction``.

The public methods check input, encode events and enforce the rules that do not depend on the
database; a backend implements the small set of ``_``-prefixed primitives underneath, and decides
nothing about appends (see :mod:`eventkeep.store.planner`). Every backend therefore refuses the
same bad input with the same errors, and the contract suite (:mod:`eventkeep.testing`) is the
specification they all pass.

The parts, each with the primitives a backend implements for it:

- :mod:`~eventkeep.store.appending`: ``append``, ``append_many``, ``append_events`` (``_append``);
- :mod:`~eventkeep.store.reading`: streams, the log, queries, counts (the ``_read_*_page`` and
  the other read primitives);
- :mod:`~eventkeep.store.verifying`: ``verify`` and ``anchor`` (``_verify``, ``_anchor_source``);
- :mod:`~eventkeep.store.snapshot_store`: snapshots (``_save_snapshot`` and friends);
- :mod:`~eventkeep.store.transfer`: ``export`` and ``import_`` (``_export_page``,
  ``_import_rows``);
- :mod:`~eventkeep.store.projection_status`: ``wait_for_projection``, ``projection_state``;
- :mod:`~eventkeep.store.lifecycle_store`: deletion, retention, truncation, archives;
- :mod:`~eventkeep.store.erasure`: personal data and ``forget``.

This module keeps what ties them together: opening, transactions (``_transaction``), waiting
for events, the clock and closing. A store and its transactions refer to each other (a store
opens transactions; a transaction writes through its store), so both live in this one module.

A store transaction: appends, checkpoints and read-model SQL that commit together, or not at all.

::

    with store.transaction() as tx:
        tx.execute("UPDATE balances SET cents = cents + ? WHERE account = ?", (500, "alice"))
        tx.append("audit-alice", [BalanceChecked()])
        tx.save_checkpoint("balances", 42, expected=41)

This is what makes projections exactly-once: the read-model change and the checkpoint move in
one transaction, and ``save_checkpoint`` is a compare-and-set, so a second consumer (a zombie
runner, say) that processed the same events finds the checkpoint moved and is rolled back.

Every backend implements it: SQLite runs it in one ``BEGIN IMMEDIATE`` transaction; the memory
store holds its lock for the duration and undoes everything on rollback; PostgreSQL runs one
database transaction. ``execute`` and ``connection`` (SQL on the store's own database) exist on
the SQL backends only; placeholders are ``?`` on every backend.
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Self, cast

from eventkeep.errors import CheckpointConflictError, ConfigurationError, ValidationError
from eventkeep.store.appending import Appending
from eventkeep.store.codec import DEFAULT_MAX_EVENT_BYTES, Codec
from eventkeep.store.dcb import AppendCondition, Query, QueryResult, check_condition
from eventkeep.store.erasure import Erasure
from eventkeep.store.events import Event, TypeRegistry, default_registry
from eventkeep.store.lifecycle_store import LifecycleMixin
from eventkeep.store.projection_status import ProjectionStatus, projection_reached
from eventkeep.store.reading import Reading
from eventkeep.store.recorded import RecordedEvent
from eventkeep.store.shredding import KeyStore
from eventkeep.store.snapshot_store import Snapshots
from eventkeep.store.transfer import Transfer
from eventkeep.store.types import (
    ANY,
    POLL_INTERVALS,
    AppendItem,
    AppendResult,
    Expected,
    PreparedAppend,
    Snapshot,
    StreamAppend,
    StreamInfo,
)
from eventkeep.store.validation import check_count, check_name, check_seconds
from eventkeep.store.verifying import Verifying

__all__ = ["EventStore", "Transaction", "Writer", "projection_reached"]


class EventStore(
    Appending,
    Reading,
    Verifying,
    Snapshots,
    Transfer,
    ProjectionStatus,
    LifecycleMixin,
    Erasure,
    abc.ABC,
):
    """An append-only event store: streams of events, and one global log across them."""

    url: str

    def __init__(
        self,
        *,
        registry: TypeRegistry | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        key_store: KeyStore | None = None,
    ) -> None:
        check_count(max_event_bytes, what="max_event_bytes", minimum=1)
        if registry is not None and not isinstance(registry, TypeRegistry):
            raise ConfigurationError(f"registry must be a TypeRegistry, got {registry!r:.80}")
        self.registry = registry if registry is not None else default_registry
        self.codec = Codec(self.registry, max_event_bytes=max_event_bytes)
        self._last_clock = 0
        self._appended = threading.Condition()
        self._append_count = 0
        self._open_tx = threading.local()  # .tx: the transaction open on this thread, if any
        self.archive_dir = None  # where lifecycle operations write archives (docs/lifecycle.md)
        self._key_store = key_store
        self._append_hooks: list[Callable[[], object]] = []

    # -- transactions and waiting -------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction for appends, checkpoints and read-model SQL: all commit, or none.

        Leaving the block with an exception rolls everything back. See
        :class:`eventkeep.store.base.Transaction`. One transaction per thread at a time: store
        methods called on the thread while it is open join it, and opening a second one on the
        same thread raises ``ValidationError`` at once.
        """
        if self.joined_transaction() is not None:
            raise ValidationError(
                "a transaction of this store is already open on this thread: use it (tx) "
                "instead of opening another; store methods called on this thread join it"
            )
        with self._transaction() as tx:
            self._open_tx.tx = tx
            try:
                yield tx
            finally:
                tx.closed = True
                self._open_tx.tx = None
        if tx.appended:
            self._notify_appended()

    def joined_transaction(self) -> Transaction | None:
        """The transaction of this store open on the calling thread, if any.

        Store methods called on that thread join it: appends, snapshots and reads run inside it
        (reads see its writes), and commit or roll back with it. They never wait for a lock
        their own caller holds.
        """
        tx: Transaction | None = getattr(self._open_tx, "tx", None)
        return tx if tx is not None and not tx.closed else None

    def wait_for_events(self, after: int, timeout: float | None = None) -> bool:
        """Block until the global log holds an event beyond position ``after``.

        True as soon as it does (at once if it already does), False once ``timeout`` seconds
        have passed (None: wait as long as it takes). Appends made through this store object
        wake the wait at once; appends by other processes are seen by polling the head, with
        an interval that starts at a few milliseconds and doubles up to 0.1 s.
        """
        check_count(after, what="after")
        if timeout is not None:
            timeout = check_seconds(timeout, what="timeout (or None)")
        deadline = None if timeout is None else time.monotonic() + timeout
        pause, longest = POLL_INTERVALS
        while True:
            seen = self._append_count
            if self._head_position() > after:
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            with self._appended:
                if self._append_count == seen:  # else an append came in meanwhile: look again
                    self._appended.wait(pause if remaining is None else min(pause, remaining))
            pause = min(pause * 2, longest)

    def _notify_appended(self) -> None:
        with self._appended:
            self._append_count += 1
            self._appended.notify_all()
        for hook in self._append_hooks:
            hook()

    def on_append(self, hook: Callable[[], object]) -> None:
        """Call ``hook()`` (on any thread; it must be quick and must not raise) whenever new
        events may be in the log: after each append through this store object and, on a
        backend that hears of other processes' appends (PostgreSQL's LISTEN), when one is
        announced. The asyncio API wakes its waiting tasks with it."""
        self._append_hooks.append(hook)

    @property
    def poll_interval(self) -> float:
        """The longest pause between two looks at the head while waiting for events: appends
        that no hook announces (another process's, on SQLite) are seen within it."""
        return POLL_INTERVALS[1]

    def _clock(self, floor: int = 0) -> int:
        """The store's clock in microseconds: never behind ``floor`` or the last reading."""
        now = max(time.time_ns() // 1000, floor, self._last_clock)
        self._last_clock = now
        return now

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the store's connections; it cannot be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- backend primitives -------------------------------------------------------------------

    def _transaction(self) -> contextlib.AbstractContextManager[Transaction]:
        """Open a transaction (see ``transaction``); commit when the block ends normally."""
        raise ConfigurationError(f"{type(self).__name__} does not support transactions yet")


class Transaction(abc.ABC):
    """One open transaction of a store; use it only inside its ``with`` block, on its thread.

    It offers the store's writer interface (appends, reads, stream versions, snapshots) inside
    the transaction, so a ``Repository(tx, Account)`` loads and saves in it: reads see the
    transaction's own writes, and everything commits or rolls back together.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.appended = False
        self.closed = False
        self._thread = threading.get_ident()

    # -- the store's writer interface, inside this transaction ---------------------------------

    @property
    def codec(self) -> Codec:
        return self.store.codec

    @property
    def registry(self) -> TypeRegistry:
        return self.store.registry

    def _joined(self) -> EventStore:
        """The store: on this thread it joins this transaction (``EventStore.transaction``)."""
        self._check_open()
        return self.store

    def read_stream(
        self,
        stream_id: str,
        from_version: int = 1,
        to_version: int | None = None,
        *,
        backwards: bool = False,
        limit: int | None = None,
        archived: bool = False,
    ) -> Iterator[RecordedEvent]:
        """Like ``EventStore.read_stream``, seeing this transaction's writes."""
        return self._joined().read_stream(
            stream_id,
            from_version,
            to_version,
            backwards=backwards,
            limit=limit,
            archived=archived,
        )

    def read_all(
        self,
        after: int | None = None,
        limit: int | None = None,
        *,
        types: Iterable[str | type[Event]] | None = None,
        stream_prefix: str | None = None,
    ) -> Iterator[RecordedEvent]:
        """Like ``EventStore.read_all``, seeing this transaction's writes."""
        return self._joined().read_all(after, limit, types=types, stream_prefix=stream_prefix)

    def read(
        self, query: Query, *, after: int | None = None, limit: int | None = None
    ) -> QueryResult:
        """Like ``EventStore.read``, seeing this transaction's writes."""
        return self._joined().read(query, after=after, limit=limit)

    def stream_version(self, stream_id: str) -> int:
        return self._joined().stream_version(stream_id)

    def list_streams(self, prefix: str = "", *, limit: int | None = None) -> list[StreamInfo]:
        return self._joined().list_streams(prefix, limit=limit)

    def head_position(self) -> int:
        return self._joined().head_position()

    def save_snapshot(
        self, stream_id: str, version: int, state_type: str, schema_version: int, data: bytes
    ) -> None:
        """Like ``EventStore.save_snapshot``; it commits or rolls back with this transaction."""
        self._joined().save_snapshot(stream_id, version, state_type, schema_version, data)

    def load_snapshot(self, stream_id: str, max_version: int | None = None) -> Snapshot | None:
        return self._joined().load_snapshot(stream_id, max_version)

    def delete_snapshots(self, stream_prefix: str = "") -> int:
        return self._joined().delete_snapshots(stream_prefix)

    # -- appends ------------------------------------------------------------------------------

    def append(
        self,
        stream_id: str,
        events: Iterable[AppendItem],
        expected_version: Expected | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        condition: AppendCondition | None = None,
    ) -> AppendResult:
        """Like ``EventStore.append``, inside this transaction (``None`` means ``ANY``)."""
        items = cast("Sequence[AppendItem]", events)
        expected = ANY if expected_version is None else expected_version
        appends = [StreamAppend(stream_id, items, expected, metadata)]
        return self.append_many(appends, condition=condition)[0]

    def append_many(
        self, appends: Iterable[StreamAppend], *, condition: AppendCondition | None = None
    ) -> list[AppendResult]:
        """Like ``EventStore.append_many``, inside this transaction.

        A ``ConcurrencyError`` (an ``AppendConditionError`` too) undoes this call's appends
        only; what the transaction did before stays (and commits, unless the error leaves the
        ``with`` block). The condition sees the transaction's own earlier appends.
        """
        self._check_open()
        checked = check_condition(condition)
        batches = self.store._prepare_many(appends)
        results = self.store._append_sealed(self._append, batches, checked)
        self.appended = True
        return results

    def append_events(
        self,
        events: Iterable[AppendItem],
        *,
        condition: AppendCondition | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        """Like ``EventStore.append_events``, inside this transaction."""
        self._check_open()
        checked = check_condition(condition)
        batches = [self.store._prepare_streamless(events, metadata)]
        results = self.store._append_sealed(self._append, batches, checked)
        self.appended = True
        return results[0]

    # -- checkpoints --------------------------------------------------------------------------

    def checkpoint(self, name: str) -> int | None:
        """The position saved under ``name``, or None if there is none."""
        self._check_open()
        return self._checkpoint(check_name(name, what="checkpoint name"))

    def save_checkpoint(self, name: str, position: int, *, expected: int | None) -> None:
        """Move checkpoint ``name`` to ``position`` if it is at ``expected`` (None: absent).

        Raises ``CheckpointConflictError`` otherwise: someone else moved it. Leaving the
        ``with`` block with that error rolls back everything this transaction did.
        """
        self._check_open()
        name = check_name(name, what="checkpoint name")
        check_count(position, what="position")
        if expected is not None:
            check_count(expected, what="expected")
        if not self._save_checkpoint(name, position, expected):
            raise CheckpointConflictError(
                f"checkpoint {name!r} is not at {expected!r} any more: another consumer moved it"
            )

    def delete_checkpoint(self, name: str) -> None:
        self._check_open()
        self._delete_checkpoint(check_name(name, what="checkpoint name"))

    def checkpoints(self) -> dict[str, int]:
        """Every checkpoint: name to position."""
        self._check_open()
        return self._checkpoints()

    # -- projection records (status and leases, see eventkeep.projections) ---------------------

    def record(self, name: str) -> bytes | None:
        """The projection record stored under ``name`` (opaque bytes), locked for this tx."""
        self._check_open()
        return self._record(check_name(name, what="record name"))

    def save_record(self, name: str, data: bytes) -> None:
        self._check_open()
        name = check_name(name, what="record name")
        if not isinstance(data, bytes):
            raise ValidationError(f"record data must be bytes, got {type(data).__name__}")
        self._save_record(name, data)

    def delete_record(self, name: str) -> None:
        self._check_open()
        self._delete_record(check_name(name, what="record name"))

    def records(self) -> list[tuple[str, bytes]]:
        """Every projection record, sorted by name."""
        self._check_open()
        return self._records()

    # -- SQL on the store's own database ------------------------------------------------------

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one SQL statement in this transaction (``?`` placeholders); returns its rows."""
        self._check_open()
        if not isinstance(statement, str):
            raise ValidationError(f"statement must be a str, got {type(statement).__name__}")
        if isinstance(params, str | bytes | Mapping):
            raise ValidationError(
                f"params must be a sequence of values, got {type(params).__name__}: {params!r:.80}"
            )
        try:
            values = tuple(params)
        except TypeError:
            raise ValidationError(
                f"params must be a sequence of values, got {type(params).__name__}"
            ) from None
        return self._execute(statement, values)

    @property
    def connection(self) -> Any:
        """The DB-API connection the transaction runs on: never commit or roll back on it."""
        self._check_open()
        return self._connection()

    @property
    def supports_sql(self) -> bool:
        return False

    def _execute(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        raise ConfigurationError(f"{self.store.url} has no SQL database: execute() needs one")

    def _connection(self) -> Any:
        raise ConfigurationError(f"{self.store.url} has no SQL database: no connection")

    def _check_open(self) -> None:
        if self.closed:
            raise ValidationError("this transaction has ended; open a new one")
        if threading.get_ident() != self._thread:
            raise ValidationError(
                "a transaction is used only on the thread that opened it; open one per thread"
            )

    # -- backend primitives -------------------------------------------------------------------

    @abc.abstractmethod
    def _append(
        self, batches: list[PreparedAppend], condition: AppendCondition | None = None
    ) -> list[AppendResult]: ...

    @abc.abstractmethod
    def _checkpoint(self, name: str) -> int | None: ...

    @abc.abstractmethod
    def _save_checkpoint(self, name: str, position: int, expected: int | None) -> bool:
        """Compare-and-set; False when the checkpoint was not at ``expected``."""

    @abc.abstractmethod
    def _delete_checkpoint(self, name: str) -> None: ...

    @abc.abstractmethod
    def _checkpoints(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def _record(self, name: str) -> bytes | None: ...

    @abc.abstractmethod
    def _save_record(self, name: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def _delete_record(self, name: str) -> None: ...

    @abc.abstractmethod
    def _records(self) -> list[tuple[str, bytes]]: ...


Writer = EventStore | Transaction
"""What the domain layer (``Repository``, deciders, snapshots) writes through: a store, or an
open transaction of one. Both offer append, append_many, the reads, stream_version and
snapshots with the same signatures; inside a transaction everything commits together."""
