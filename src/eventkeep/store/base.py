"""The store interface: ``EventStore``, composed of one part per concern, and its
``Transaction`` (:mod:`eventkeep.store.transaction`).

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
for events, the clock and closing.
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Self

from eventkeep.errors import ConfigurationError, ValidationError
from eventkeep.store.appending import Appending
from eventkeep.store.codec import DEFAULT_MAX_EVENT_BYTES, Codec
from eventkeep.store.erasure import Erasure
from eventkeep.store.events import TypeRegistry, default_registry
from eventkeep.store.lifecycle_store import LifecycleMixin
from eventkeep.store.projection_status import ProjectionStatus, projection_reached
from eventkeep.store.reading import Reading
from eventkeep.store.shredding import KeyStore
from eventkeep.store.snapshot_store import Snapshots
from eventkeep.store.transaction import Transaction
from eventkeep.store.transfer import Transfer
from eventkeep.store.types import POLL_INTERVALS
from eventkeep.store.validation import check_count, check_seconds
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


Writer = EventStore | Transaction
"""What the domain layer (``Repository``, deciders, snapshots) writes through: a store, or an
open transaction of one. Both offer append, append_many, the reads, stream_version and
snapshots with the same signatures; inside a transaction everything commits together."""
