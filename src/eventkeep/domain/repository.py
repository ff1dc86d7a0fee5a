"""The repository: load aggregates from their streams, save what they recorded.

::

    accounts = eventkeep.Repository(store, BankAccount)     # streams bankaccount-<id>
    account = accounts.load("alice")                         # NotFoundError if missing
    account.withdraw(Decimal("30"))
    accounts.save(account)                                   # expected version: as loaded

    accounts.execute("alice", lambda a: a.withdraw(Decimal("30")))    # reload + retry on conflict
    accounts.load("alice", at_version=3)                     # the past, by version
    accounts.load("alice", as_of=datetime(2025, 1, 1, tzinfo=UTC))    # ... or by time
    for entry in accounts.history("alice"): ...              # every version and its state

A load reads the latest usable snapshot (never one after the requested version), then replays
the events after it with ``read_stream``. A save appends every aggregate's pending events in one
transaction (``append_many``), each stream expecting the version its aggregate was loaded at.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Generic, TypeVar, cast, overload

from eventkeep.domain.aggregate import Aggregate, check_category
from eventkeep.domain.conflicts import ConflictCheck, merge_append
from eventkeep.domain.decider import Decider, DeciderAggregate
from eventkeep.domain.snapshots import (
    RebuildReport,
    SnapshotPolicy,
    as_policy,
    decode_state,
    encode_state,
    try_save_snapshot,
)
from eventkeep.domain.temporal import HistoryEntry, version_at
from eventkeep.errors import ConcurrencyError, ConfigurationError, NotFoundError, ValidationError
from eventkeep.store import AppendResult, EventStore, Snapshot, StreamAppend, Writer
from eventkeep.store.base import Transaction
from eventkeep.store.events import Event
from eventkeep.store.validation import check_count
from eventkeep.telemetry import span

__all__ = ["Repository"]

logger = logging.getLogger("eventkeep.repository")

A = TypeVar("A", bound=Aggregate)
C = TypeVar("C")
S = TypeVar("S")
E = TypeVar("E", bound=Event)
R = TypeVar("R")


class Repository(Generic[A]):
    """Loads and saves one aggregate type (a class or a :class:`Decider`) in one store.

    - ``category`` and ``separator``: streams are ``<category><separator><id>`` (default: the
      aggregate's ``__category__`` and ``-``).
    - ``snapshot_every``: overrides the aggregate type's snapshot policy; ``snapshots=False``
      neither reads nor writes snapshots.
    - ``conflicts``: an opt-in rule that lets a save whose stream moved on append its events
      after the concurrent ones when they do not conflict (see :mod:`eventkeep.domain.conflicts`).
    """

    @overload
    def __init__(
        self: Repository[DeciderAggregate[C, S, E]],
        store: Writer,
        aggregate: Decider[C, S, E],
        *,
        category: str | None = None,
        separator: str = "-",
        snapshot_every: int | SnapshotPolicy | None = None,
        snapshots: bool = True,
        conflicts: ConflictCheck | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: Repository[A],
        store: Writer,
        aggregate: type[A],
        *,
        category: str | None = None,
        separator: str = "-",
        snapshot_every: int | SnapshotPolicy | None = None,
        snapshots: bool = True,
        conflicts: ConflictCheck | None = None,
    ) -> None: ...

    def __init__(
        self,
        store: Writer,
        aggregate: Any,
        *,
        category: str | None = None,
        separator: str = "-",
        snapshot_every: int | SnapshotPolicy | None = None,
        snapshots: bool = True,
        conflicts: ConflictCheck | None = None,
    ) -> None:
        if not isinstance(store, EventStore | Transaction):
            raise ConfigurationError(
                f"Repository needs an EventStore or an open transaction of one, got {store!r:.80}"
            )
        cls = aggregate.aggregate_type if isinstance(aggregate, Decider) else aggregate
        if not (isinstance(cls, type) and issubclass(cls, Aggregate)) or cls.__abstract__:
            raise ConfigurationError(
                f"Repository takes an Aggregate subclass or a Decider, got {aggregate!r:.80}"
            )
        if not isinstance(separator, str) or not separator:
            raise ConfigurationError(f"separator must be a non-empty str, got {separator!r}")
        if conflicts is not None and not callable(conflicts):
            raise ConfigurationError(f"conflicts must be a function, got {conflicts!r}")
        self.store = store
        self.aggregate_type: type[A] = cast("type[A]", cls)
        self.category = check_category(
            cls.__category__ if category is None else category,
            what="category",
            separator=separator,
        )
        self.separator = separator
        self.prefix = f"{self.category}{separator}"
        policy = (
            cls.__snapshot_policy__
            if snapshot_every is None
            else as_policy(snapshot_every, what="snapshot_every")
        )
        self.snapshot_policy: SnapshotPolicy | None = policy if snapshots else None
        self.conflicts = conflicts
        self._others: dict[type[Aggregate], Repository[Any]] = {}

    # -- naming -------------------------------------------------------------------------------

    def stream_id(self, id: str | uuid.UUID) -> str:
        """The stream that holds the aggregate ``id``."""
        return f"{self.prefix}{_check_id(id)}"

    def ids(self) -> list[str]:
        """The ids of every aggregate of this category in the store, sorted."""
        start = len(self.prefix)
        return [info.stream_id[start:] for info in self.store.list_streams(self.prefix)]

    def exists(self, id: str | uuid.UUID) -> bool:
        return self.store.stream_version(self.stream_id(id)) > 0

    # -- loading ------------------------------------------------------------------------------

    def create(self, id: str | uuid.UUID) -> A:
        """A new, empty aggregate (version 0); saving it fails if the stream already exists."""
        return self.aggregate_type(_check_id(id))

    def load(
        self,
        id: str | uuid.UUID,
        *,
        at_version: int | None = None,
        as_of: datetime | None = None,
    ) -> A:
        """The aggregate as it is now, or as it was at ``at_version`` or at the time ``as_of``.

        Raises ``NotFoundError`` when the stream does not exist (or did not reach that version,
        or had no events yet at that time).
        """
        key = _check_id(id)
        stream_id = self.stream_id(key)
        if as_of is not None:
            if at_version is not None:
                raise ValidationError("pass at_version or as_of, not both")
            at_version = version_at(self.store, stream_id, as_of)
        elif at_version is not None:
            check_count(at_version, what="at_version", minimum=1)
        with span("eventkeep.load", stream_id=stream_id):
            aggregate = self._rebuild(key, stream_id, at_version)
        if aggregate.version == 0:
            raise NotFoundError(
                f"{self.aggregate_type.__qualname__} {key!r} not found: stream {stream_id!r} "
                "has no events"
            )
        if at_version is not None:
            if aggregate.version < at_version:
                raise NotFoundError(
                    f"stream {stream_id!r} is at version {aggregate.version}; "
                    f"it has no version {at_version}"
                )
        elif self._snapshot_due(aggregate):
            try_save_snapshot(self.store, stream_id, aggregate)
        return aggregate

    def get_or_create(self, id: str | uuid.UUID) -> A:
        """The stored aggregate, or a new empty one when its stream does not exist."""
        try:
            return self.load(id)
        except NotFoundError:
            return self.create(id)

    def _rebuild(
        self, id: str, stream_id: str, at_version: int | None, *, snapshots: bool = True
    ) -> A:
        aggregate: A | None = None
        if snapshots and self.snapshot_policy is not None:
            snapshot = self.store.load_snapshot(stream_id, at_version)
            if snapshot is not None:
                aggregate = self._restore(id, snapshot)
        if aggregate is None:
            aggregate = self.aggregate_type(id)
        aggregate._ek_replay(self.store.read_stream(stream_id, aggregate.version + 1, at_version))
        return aggregate

    def _restore(self, id: str, snapshot: Snapshot) -> A | None:
        state = decode_state(self.aggregate_type, snapshot)
        if state is None:
            return None
        aggregate = self.aggregate_type(id)
        aggregate._ek_set_state(state)
        aggregate.version = aggregate._ek_stored_version = snapshot.version
        aggregate._ek_snapshot_version = snapshot.version
        return aggregate

    def _snapshot_due(self, aggregate: Aggregate) -> bool:
        policy = self.snapshot_policy
        return policy is not None and policy.due(aggregate.version, aggregate._ek_snapshot_version)

    # -- saving -------------------------------------------------------------------------------

    def save(self, *aggregates: Aggregate) -> list[AppendResult]:
        """Append the pending events of every aggregate in one transaction.

        Each stream expects the version its aggregate was loaded at (0 for a new one); if any
        stream moved on, nothing is written and ``ConcurrencyError`` is raised, unless the
        repository's ``conflicts`` rule lets our events go after the concurrent ones (the
        aggregate is then refreshed from the store). Aggregates of another type are saved in
        the same transaction with their own class's category and snapshot policy, and no
        conflict rule. Snapshots are written afterwards.
        """
        with span("eventkeep.save", aggregates=len(aggregates)):
            return self._save(*aggregates)

    def _save(self, *aggregates: Aggregate) -> list[AppendResult]:
        """``save``, inside its span."""
        dirty: list[Aggregate] = []
        for aggregate in aggregates:
            if not isinstance(aggregate, Aggregate):
                raise ValidationError(f"save() takes aggregates, got {aggregate!r:.80}")
            if aggregate._ek_pending and all(aggregate is not seen for seen in dirty):
                dirty.append(aggregate)
        if not dirty:
            return []
        owners = [self._owner(aggregate) for aggregate in dirty]
        appends = [
            StreamAppend(
                owner.stream_id(aggregate.id),
                list(aggregate._ek_pending),
                aggregate._ek_stored_version,
            )
            for owner, aggregate in zip(owners, dirty, strict=True)
        ]
        merged: set[int] = set()
        try:
            results = self.store.append_many(appends)
        except ConcurrencyError as exc:
            if self.conflicts is None:
                raise
            mergeable = {i for i, owner in enumerate(owners) if owner is self}
            results, merged = merge_append(self.store, appends, exc, self.conflicts, mergeable)
        for index, (owner, aggregate, result) in enumerate(
            zip(owners, dirty, results, strict=True)
        ):
            if index in merged:
                owner._refresh(aggregate, result.version)
            else:
                aggregate._ek_pending = []
                aggregate.version = aggregate._ek_stored_version = result.version
            if owner._snapshot_due(aggregate):
                try_save_snapshot(self.store, result.stream_id, aggregate)
        return results

    def _owner(self, aggregate: Aggregate) -> Repository[Any]:
        if isinstance(aggregate, self.aggregate_type):
            return self
        kind = type(aggregate)
        other = self._others.get(kind)
        if other is None:
            other = self._others[kind] = Repository(self.store, kind)
        return other

    def _refresh(self, aggregate: Aggregate, version: int) -> None:
        """Bring an aggregate whose events were merged after concurrent ones up to date."""
        fresh = self._rebuild(aggregate.id, self.stream_id(aggregate.id), version)
        state = vars(aggregate)
        state.clear()
        state.update(vars(fresh))

    # -- commands -----------------------------------------------------------------------------

    def execute(
        self,
        id: str | uuid.UUID,
        command: Callable[[A], R],
        *,
        retries: int = 3,
        create: bool = False,
    ) -> R:
        """Load, run ``command(aggregate)``, save; on ``ConcurrencyError`` reload and run again.

        ``command`` may run more than once, so it must not have side effects outside the
        aggregate. With ``create=True`` a missing aggregate starts empty instead of raising
        ``NotFoundError``. After ``retries`` retries the last ``ConcurrencyError`` is raised.
        Returns what ``command`` returned on the attempt that was saved.
        """
        check_count(retries, what="retries")
        if not callable(command):
            raise ValidationError(f"execute() takes a callable command, got {command!r:.80}")
        if not isinstance(create, bool):
            raise ValidationError(f"create must be True or False, got {create!r}")
        attempt = 0
        while True:
            aggregate = self.get_or_create(id) if create else self.load(id)
            result = command(aggregate)
            try:
                self.save(aggregate)
            except ConcurrencyError as exc:
                if attempt >= retries:
                    raise
                attempt += 1
                logger.debug("%s; reloading for attempt %d", exc, attempt + 1)
                continue
            return result

    def handle(
        self: Repository[DeciderAggregate[C, S, E]],
        id: str | uuid.UUID,
        command: C,
        *,
        retries: int = 3,
        create: bool = True,
    ) -> list[E]:
        """Run a decider's ``decide`` on ``command`` and save the events (with retries).

        A decider starts from its initial state, so by default a missing stream is not an error.
        """
        return self.execute(
            id, lambda aggregate: aggregate.handle(command), retries=retries, create=create
        )

    # -- audit --------------------------------------------------------------------------------

    def history(
        self, id: str | uuid.UUID, *, from_version: int = 1, to_version: int | None = None
    ) -> Iterator[HistoryEntry[A]]:
        """Every version of the aggregate: when, which event, and the state right after it.

        ``from_version`` and ``to_version`` limit the entries (the state before ``from_version``
        is rebuilt first, from a snapshot when there is one). ``NotFoundError`` is raised at
        once for a missing stream. Each entry's state is a copy, so a long history costs one
        copy per event.
        """
        key = _check_id(id)
        check_count(from_version, what="from_version", minimum=1)
        check_count(0 if to_version is None else to_version, what="to_version")
        stream_id = self.stream_id(key)
        if not self.exists(key):
            raise NotFoundError(f"{self.aggregate_type.__qualname__} {key!r} not found")
        return self._history(key, stream_id, from_version, to_version)

    def _history(
        self, id: str, stream_id: str, from_version: int, to_version: int | None
    ) -> Iterator[HistoryEntry[A]]:
        if from_version > 1:
            aggregate = self._rebuild(id, stream_id, from_version - 1)
        else:
            aggregate = self.aggregate_type(id)
        for recorded in self.store.read_stream(stream_id, aggregate.version + 1, to_version):
            aggregate._ek_replay((recorded,))
            yield HistoryEntry(
                recorded.version,
                recorded.recorded_at,
                recorded.event,
                aggregate._ek_history_copy(),
                recorded,
            )

    # -- snapshots ----------------------------------------------------------------------------

    def rebuild_snapshots(self) -> RebuildReport:
        """Delete this category's snapshots, and write fresh ones from the events.

        A stream gets a snapshot when the policy finds one due for its full replay.
        """
        policy = self.snapshot_policy
        if policy is None:
            raise ConfigurationError(
                f"{self.aggregate_type.__qualname__} has no snapshot policy; set "
                "__snapshot_every__ (or snapshot_every=) to use snapshots"
            )
        deleted = self.store.delete_snapshots(self.prefix)
        streams = self.store.list_streams(self.prefix)
        written = 0
        start = len(self.prefix)
        cls = self.aggregate_type
        for info in streams:
            aggregate = self._rebuild(info.stream_id[start:], info.stream_id, None, snapshots=False)
            if aggregate.version and policy.due(aggregate.version, 0):
                data = encode_state(aggregate, self.store)
                self.store.save_snapshot(
                    info.stream_id,
                    aggregate.version,
                    cls.__state_type__,
                    cls.__state_version__,
                    data,
                )
                written += 1
        return RebuildReport(self.category, len(streams), written, deleted)

    def __repr__(self) -> str:
        return f"Repository({self.aggregate_type.__qualname__}, category={self.category!r})"


def _check_id(id: Any) -> str:
    if isinstance(id, uuid.UUID):
        return str(id)
    if isinstance(id, str) and id:
        return id
    raise ValidationError(f"an aggregate id must be a non-empty str or a UUID, got {id!r}")
