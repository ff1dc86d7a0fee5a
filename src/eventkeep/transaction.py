"""A store transaction: appends, checkpoints and read-model SQL that commit together, or not at all.

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
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from eventkeep.errors import CheckpointConflictError, ConfigurationError, ValidationError
from eventkeep.validation import check_count, check_name

if TYPE_CHECKING:
    from eventkeep.codec import Codec
    from eventkeep.events import Event, TypeRegistry
    from eventkeep.recorded import RecordedEvent
    from eventkeep.store import (
        AppendItem,
        AppendResult,
        EventStore,
        Expected,
        PreparedAppend,
        Snapshot,
        StreamAppend,
        StreamInfo,
    )

__all__ = ["Transaction"]


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
    ) -> Iterator[RecordedEvent]:
        """Like ``EventStore.read_stream``, seeing this transaction's writes."""
        return self._joined().read_stream(
            stream_id, from_version, to_version, backwards=backwards, limit=limit
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
    ) -> AppendResult:
        """Like ``EventStore.append``, inside this transaction (``None`` means ``ANY``)."""
        from eventkeep.store import ANY, StreamAppend

        items = cast("Sequence[AppendItem]", events)
        expected = ANY if expected_version is None else expected_version
        return self.append_many([StreamAppend(stream_id, items, expected, metadata)])[0]

    def append_many(self, appends: Iterable[StreamAppend]) -> list[AppendResult]:
        """Like ``EventStore.append_many``, inside this transaction.

        A ``ConcurrencyError`` undoes this call's appends only; what the transaction did before
        stays (and commits, unless the error leaves the ``with`` block).
        """
        self._check_open()
        batches = self.store._prepare_many(appends)
        results = self._append(batches)
        self.appended = True
        return results

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

    # -- projection records (status and leases, see eventkeep.projections) ---------------------

    def record(self, name: str) -> bytes | None:
        """The projection record stored under ``name`` (opaque bytes), locked for this tx."""
        self._check_open()
        return self._record(name)

    def save_record(self, name: str, data: bytes) -> None:
        self._check_open()
        self._save_record(name, data)

    def delete_record(self, name: str) -> None:
        self._check_open()
        self._delete_record(name)

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
        return self._execute(statement, tuple(params))

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
    def _append(self, batches: list[PreparedAppend]) -> list[AppendResult]: ...

    @abc.abstractmethod
    def _checkpoint(self, name: str) -> int | None: ...

    @abc.abstractmethod
    def _save_checkpoint(self, name: str, position: int, expected: int | None) -> bool:
        """Compare-and-set; False when the checkpoint was not at ``expected``."""

    @abc.abstractmethod
    def _delete_checkpoint(self, name: str) -> None: ...

    @abc.abstractmethod
    def _record(self, name: str) -> bytes | None: ...

    @abc.abstractmethod
    def _save_record(self, name: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def _delete_record(self, name: str) -> None: ...

    @abc.abstractmethod
    def _records(self) -> list[tuple[str, bytes]]: ...
