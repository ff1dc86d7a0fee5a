"""One projection inside a runner: its lease, its batches, its failures and its rebuilds."""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from eventkeep.errors import CheckpointConflictError, ConcurrencyError
from eventkeep.projections.checkpoints import (
    ProjectionRecord,
    lease_free,
    load_record,
    now_us,
    rebuild_checkpoint,
    save_record,
)
from eventkeep.projections.names import quoted_table
from eventkeep.projections.projection import HandlerContext, Projection
from eventkeep.projections.subscription import Batch, Subscription
from eventkeep.store import EventStore
from eventkeep.store.base import Transaction
from eventkeep.store.recorded import RecordedEvent

__all__ = ["Job", "RetryPolicy"]

log = logging.getLogger("eventkeep.projections")

CONFLICT_RETRIES = 5
"""Immediate retries of a batch whose appends hit a ConcurrencyError, before it counts as failed."""
STANDBY_POLL = 1.0
"""Longest pause between a standby's attempts to take the lease."""
ADVANCE_EVERY = 1.0
"""Seconds between checkpoint moves over events a filtered projection does not handle."""


class RetryPolicy(NamedTuple):
    """How a failed projection is retried: after ``first`` seconds, then ``factor`` times longer
    each time up to ``longest``; after ``max_retries`` (None: never) only an operator's retry or
    skip moves it on."""

    first: float = 1.0
    factor: float = 2.0
    longest: float = 60.0
    max_retries: int | None = None

    def delay(self, retries: int) -> float | None:
        if self.max_retries is not None and retries > self.max_retries:
            return None
        return min(self.longest, self.first * self.factor ** max(0, retries - 1))


class LeaseLost(Exception):
    """This runner's lease was taken over: the batch is rolled back, the runner stands by."""


class Job:
    """Runs one projection for a runner: call ``tick()`` repeatedly."""

    def __init__(
        self,
        store: EventStore,
        projection: Projection,
        *,
        owner: str,
        lease_ttl: float,
        retry: RetryPolicy,
    ) -> None:
        if not projection.name:
            raise ValueError(f"{projection!r} has no name")
        self.store = store
        self.projection = projection
        self.name = projection.name
        self.owner = owner
        self.lease_ttl = lease_ttl
        self.retry = retry
        self.subscription = Subscription(
            store,
            types=projection.handled_types(),
            stream_prefix=projection.stream_prefix,
            batch_size=projection.batch_size,
        )
        self.fence: int | None = None
        self.record: ProjectionRecord | None = None
        self.checkpoint = 0
        self.scanned = 0
        self.caught_up = False
        self.conflicts = 0
        self._renew_at = 0.0
        self._advanced_at = 0.0

    # -- the loop -----------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.fence is not None

    @property
    def rebuilding(self) -> bool:
        return self.record is not None and self.record.rebuild_version is not None

    @property
    def next_deadline(self) -> float:
        """The monotonic time of the next lease renewal or retry, whichever is sooner."""
        deadline = self._renew_at
        record = self.record
        if self.active and record is not None and record.state == "failed" and record.retry_at > 0:
            deadline = min(deadline, time.monotonic() + (record.retry_at - now_us()) / 1e6)
        return deadline

    def tick(self) -> bool:
        """Renew (or take) the lease when due, then process one batch; True if it did work."""
        if time.monotonic() >= self._renew_at:
            self._lease()
        record = self.record
        if not self.active or record is None:
            return False
        if record.state == "failed" and (record.retry_at < 0 or now_us() < record.retry_at):
            return False
        try:
            return self._batch()
        except LeaseLost:
            self._lose("its lease was taken over")
            return False
        except CheckpointConflictError:
            log.warning("projection %s: checkpoint moved by someone else; re-reading", self.name)
            self._renew_at = 0.0
            return True

    def release(self) -> None:
        """Give the lease up (on a clean stop), so a standby can take over at once."""
        if not self.active:
            return
        with self.store.transaction() as tx:
            record = load_record(tx, self.name)
            if record is not None and record.owner == self.owner and record.fence == self.fence:
                record.owner = None
                record.lease_expires = 0
                if record.state != "failed":
                    record.state = "stopped"
                save_record(tx, record)
        self.fence = None
        self._renew_at = 0.0  # a later run takes the lease again at once
        log.info("projection %s: stopped at position %d", self.name, self.checkpoint)

    # -- the lease ----------------------------------------------------------------------------

    def _lease(self) -> None:
        projection = self.projection
        with self.store.transaction() as tx:
            record = load_record(tx, self.name)
            now = now_us()
            fresh = record is None
            if record is None:
                record = ProjectionRecord(
                    name=self.name, version=projection.version, tables=list(projection.tables)
                )
            mine = self.fence is not None and record.owner == self.owner
            mine = mine and record.fence == self.fence
            took = False
            if not mine:
                if not lease_free(record, now):
                    if self.active:
                        self.fence = None
                        self._lose(f"{record.owner} holds its lease now")
                    self.record = record
                    self._renew_at = time.monotonic() + min(self.lease_ttl / 3, STANDBY_POLL)
                    return
                record.fence += 1
                record.owner = self.owner
                self.fence = record.fence
                took = True
            record.lease_expires = now + int(self.lease_ttl * 1_000_000)
            if fresh:
                self._setup(tx, record.generation, activate=True)
                tx.save_checkpoint(self.name, 0, expected=None)
            if took:
                self._on_take(tx, record)
            if record.rebuild_requested and record.rebuild_version is None:
                self._start_rebuild(tx, record, projection.version)
            save_record(tx, record)
            self.record = record
            self.checkpoint = self._stored_checkpoint(tx, record)
        self._renew_at = time.monotonic() + self.lease_ttl / 3
        if took:
            log.info(
                "projection %s: lease taken by %s (fence %d) at position %d",
                self.name,
                self.owner,
                record.fence,
                self.checkpoint,
            )

    def _on_take(self, tx: Transaction, record: ProjectionRecord) -> None:
        version = self.projection.version
        if record.rebuild_version is not None and record.rebuild_version != version:
            log.info("projection %s: restarting the rebuild for version %d", self.name, version)
            self._abandon_rebuild(tx, record)
        if record.version != version and record.rebuild_version is None:
            if self.projection.rebuildable:
                log.info(
                    "projection %s: version %d -> %d, rebuilding",
                    self.name,
                    record.version,
                    version,
                )
                self._start_rebuild(tx, record, version)
            else:
                record.version = version

    def _lose(self, why: str) -> None:
        self.fence = None
        self.caught_up = False
        log.warning("projection %s: standing by, %s", self.name, why)

    def _check_lease(self, tx: Transaction) -> ProjectionRecord:
        record = load_record(tx, self.name)
        if record is None or record.owner != self.owner or record.fence != self.fence:
            raise LeaseLost
        return record

    def _stored_checkpoint(self, tx: Transaction, record: ProjectionRecord) -> int:
        name = self._checkpoint_name(record)
        return tx.checkpoint(name) or 0

    def _checkpoint_name(self, record: ProjectionRecord) -> str:
        if record.rebuild_generation is not None:
            return rebuild_checkpoint(self.name)
        return self.name

    # -- batches ------------------------------------------------------------------------------

    def _batch(self) -> bool:
        record = self.record
        assert record is not None
        batch = self.subscription.fetch(self.checkpoint)
        self.caught_up = batch.caught_up
        if not batch.events:
            return self._idle(batch)
        if self.projection.transactional:
            return self._transactional(batch)
        return self._external(batch)

    def _context(self, tx: Transaction | None, record: ProjectionRecord) -> HandlerContext:
        generation = record.rebuild_generation or record.generation
        return HandlerContext(self.store, self.projection, tx, generation)

    def _transactional(self, batch: Batch) -> bool:
        current: RecordedEvent | None = None
        try:
            with self.store.transaction() as tx:
                record = self._check_lease(tx)
                expected = self.checkpoint
                ctx = self._context(tx, record)
                handle = self.projection.handle
                for current in batch.events:
                    ctx.recorded = current
                    handle(current, ctx)
                current = None
                tx.save_checkpoint(self._checkpoint_name(record), batch.position, expected=expected)
                self._progressed(tx, record, batch)
        except (LeaseLost, CheckpointConflictError):
            raise
        except Exception as exc:
            if current is None:
                raise
            if isinstance(exc, ConcurrencyError) and self.conflicts < CONFLICT_RETRIES:
                self.conflicts += 1
                return True
            self._failed(current, exc)
            return True
        self.conflicts = 0
        self.checkpoint = batch.position
        return True

    def _external(self, batch: Batch) -> bool:
        assert self.record is not None
        ctx = self._context(None, self.record)
        handle = self.projection.handle
        done = self.checkpoint
        failure: tuple[RecordedEvent, Exception] | None = None
        for recorded in batch.events:
            ctx.recorded = recorded
            try:
                handle(recorded, ctx)
            except Exception as exc:
                failure = (recorded, exc)
                break
            done = recorded.position
        end = batch.position if failure is None else done
        if end > self.checkpoint:
            with self.store.transaction() as tx:
                record = self._check_lease(tx)
                expected = self.checkpoint
                tx.save_checkpoint(self._checkpoint_name(record), end, expected=expected)
                if failure is None:
                    self._progressed(tx, record, batch)
            self.checkpoint = end
        if failure is not None:
            self._failed(*failure)
        return True

    def _progressed(self, tx: Transaction, record: ProjectionRecord, batch: Batch) -> None:
        """Bring the record's state up to date (written only when it changes)."""
        in_place = record.rebuild_generation is None and record.rebuild_version is not None
        if in_place and batch.position >= record.rebuild_target:  # an in-place rebuild is done
            record.rebuild_version = None
            record.rebuild_target = 0
        state = "rebuilding" if record.rebuild_version is not None else None
        state = state or ("caught-up" if batch.caught_up else "running")
        if record.state != state or record.error is not None or record.retries:
            record.state = state
            record.error = None
            record.failing_position = None
            record.retries = 0
            record.retry_at = 0
            save_record(tx, record)
        self.record = record

    def _idle(self, batch: Batch) -> bool:
        """Nothing to handle: finish a rebuild, or move the checkpoint over unhandled events."""
        record = self.record
        assert record is not None
        self.scanned = batch.position
        if record.rebuild_generation is not None:
            self._finish_rebuild(batch.position)
            return True
        due = time.monotonic() - self._advanced_at >= ADVANCE_EVERY
        stale = record.state not in ("caught-up", "failed")
        if (batch.position > self.checkpoint and due) or stale:
            self._advanced_at = time.monotonic()
            with self.store.transaction() as tx:
                record = self._check_lease(tx)
                name = self._checkpoint_name(record)
                if batch.position > self.checkpoint:
                    tx.save_checkpoint(name, batch.position, expected=self.checkpoint)
                self._progressed(tx, record, batch)
            self.checkpoint = batch.position
        return False

    # -- failures -----------------------------------------------------------------------------

    def _failed(self, recorded: RecordedEvent, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        with self.store.transaction() as tx:
            record = self._check_lease(tx)
            again = record.failing_position == recorded.position
            record.retries = record.retries + 1 if again else 1
            delay = self.retry.delay(record.retries)
            record.state = "failed"
            record.error = record.last_error = error
            record.failing_position = recorded.position
            record.retry_at = -1 if delay is None else now_us() + int(delay * 1_000_000)
            save_record(tx, record)
            self.record = record
        self.conflicts = 0
        log.error(
            "projection %s failed at position %d (%s %s@%d), attempt %d; %s",
            self.name,
            recorded.position,
            recorded.type,
            recorded.stream_id,
            recorded.version,
            record.retries,
            f"retrying in {delay:.1f}s" if delay is not None else "waiting for an operator",
            exc_info=exc,
        )

    # -- rebuilds -----------------------------------------------------------------------------

    def _setup(self, tx: Transaction, generation: int, *, activate: bool) -> None:
        ctx = HandlerContext(self.store, self.projection, tx, generation)
        self.projection.setup(ctx)
        if activate:
            self.projection.activate(ctx)

    def _start_rebuild(self, tx: Transaction, record: ProjectionRecord, version: int) -> None:
        record.rebuild_requested = False
        if not self.projection.rebuildable:
            log.warning("projection %s cannot be rebuilt (a reactor); ignored", self.name)
            return
        record.rebuild_version = version
        record.rebuild_target = self.store.head_position()
        record.state = "rebuilding"
        record.error = None
        record.failing_position = None
        record.retries = 0
        record.retry_at = 0
        if self.projection.tables and tx.supports_sql:
            # Blue/green: fill a fresh generation while readers keep the current one.
            record.rebuild_generation = record.generation + 1
            self._setup(tx, record.rebuild_generation, activate=False)
            name = rebuild_checkpoint(self.name)
            tx.delete_checkpoint(name)
            tx.save_checkpoint(name, 0, expected=None)
        else:
            # In place: clear the read model and replay into it.
            self.projection.reset()
            self._setup(tx, record.generation, activate=True)
            record.version = version
            tx.save_checkpoint(self.name, 0, expected=tx.checkpoint(self.name))
        self.checkpoint = self._stored_checkpoint(tx, record)
        target = record.rebuild_target
        log.info("projection %s: rebuild started (to position %d)", self.name, target)

    def _abandon_rebuild(self, tx: Transaction, record: ProjectionRecord) -> None:
        if record.rebuild_generation is not None:
            ctx = HandlerContext(self.store, self.projection, tx, record.rebuild_generation)
            self.projection.drop(ctx)
            tx.delete_checkpoint(rebuild_checkpoint(self.name))
        record.rebuild_version = None
        record.rebuild_generation = None

    def _finish_rebuild(self, position: int) -> None:
        """The new generation has caught up: swap it in, in one transaction."""
        with self.store.transaction() as tx:
            record = self._check_lease(tx)
            new = record.rebuild_generation
            assert new is not None
            assert record.rebuild_version is not None
            if tx.checkpoint(rebuild_checkpoint(self.name)) != self.checkpoint:
                raise CheckpointConflictError(f"{self.name}: the rebuild checkpoint moved")
            self.projection.activate(HandlerContext(self.store, self.projection, tx, new))
            what = f"projection record {self.name!r}"
            for table in record.tables:
                if table not in self.projection.tables:
                    tx.execute(f"DROP VIEW IF EXISTS {quoted_table(table, what=what)}")
                old = quoted_table(table, record.generation, what=what)
                tx.execute(f"DROP TABLE IF EXISTS {old}")
            record.tables = list(self.projection.tables)
            tx.delete_checkpoint(rebuild_checkpoint(self.name))
            tx.save_checkpoint(self.name, position, expected=tx.checkpoint(self.name))
            record.generation = new
            record.version = record.rebuild_version
            record.rebuild_version = None
            record.rebuild_generation = None
            record.rebuild_target = 0
            record.state = "caught-up"
            save_record(tx, record)
            self.record = record
        self.checkpoint = position
        log.info(
            "projection %s: rebuilt as version %d (generation %d), swapped in at position %d",
            self.name,
            record.version,
            record.generation,
            position,
        )
