"""One projection inside a runner: its lease, its batches, its failures and its rebuilds."""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

import msgspec

from eventkeep.errors import CheckpointConflictError, ConcurrencyError, EventkeepError
from eventkeep.projections.checkpoints import (
    Parked,
    ProjectionRecord,
    lease_free,
    load_record,
    now_us,
    rebuild_checkpoint,
    replay_marker,
    save_record,
)
from eventkeep.projections.erasure import forget_log_end, run_forget_hooks
from eventkeep.projections.names import quoted_table
from eventkeep.projections.projection import HandlerContext, Projection
from eventkeep.projections.subscription import Batch, Subscription
from eventkeep.store import EventStore
from eventkeep.store.base import Transaction
from eventkeep.store.recorded import RecordedEvent
from eventkeep.telemetry import ENABLED, span

__all__ = ["Job", "RetryPolicy"]

log = logging.getLogger("eventkeep.projections")

CONFLICT_RETRIES = 5
"""Immediate retries of a batch whose appends hit a ConcurrencyError, before it counts as failed."""
STANDBY_POLL = 1.0
"""Longest pause between a standby's attempts to take the lease."""
ADVANCE_EVERY = 1.0
"""Seconds between checkpoint moves over events a filtered projection does not handle."""
TROUBLE_FIRST = 0.05
"""First pause after the store (or user code outside a handler) failed a projection's turn;
it doubles on each further failure, up to a third of the lease TTL (so a lease is renewed in
time once the store is back)."""


class RetryPolicy(NamedTuple):
    """How a failed projection is retried: after ``first`` seconds, then ``factor`` times longer
    each time up to ``longest``; after ``max_retries`` (None: never) only an operator's retry or
    skip moves it on."""

    first: float = 1.0
    factor: float = 2.0
    longest: float = 60.0
    max_retries: int | None = None

    def delay(self, retries: int) -> float | None:
        """Seconds before retry number ``retries`` (1 = the first); never more than ``longest``,
        however many retries (no overflow); None once ``max_retries`` is exceeded."""
        if self.max_retries is not None and retries > self.max_retries:
            return None
        try:
            value = self.first * self.factor ** max(0, retries - 1)
        except OverflowError:
            return self.longest
        return min(self.longest, value)


def _parked(recorded: RecordedEvent, error: str, behind: int | None = None) -> Parked:
    return Parked(recorded.position, recorded.stream_id, recorded.type, error, now_us(), behind)


class LeaseLost(Exception):
    """This runner's lease was taken over: the batch is rolled back, the runner stands by."""


class _HandlerFailed(Exception):
    """A handler raised while handling ``events[index]`` of a transactional batch."""

    def __init__(self, index: int, exc: Exception) -> None:
        super().__init__(index, exc)
        self.index = index
        self.exc = exc


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
        if projection.query is not None:
            self.subscription = Subscription(
                store, query=projection.query, batch_size=projection.batch_size
            )
        else:
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
        self._wake_at = 0.0  # monotonic: no turn before this (after trouble)
        self.forgets_due = 0.0  # monotonic: the next look at the forget log
        self._troubles = 0
        self._standing_by_for: str | None = None  # the lease holder last logged as such

    # -- the loop -----------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.fence is not None

    @property
    def rebuilding(self) -> bool:
        return self.record is not None and self.record.rebuild_version is not None

    @property
    def backing_off(self) -> bool:
        """True while the projection waits: for a retry, an operator, or after trouble."""
        if time.monotonic() < self._wake_at:
            return True
        record = self.record
        if record is None or record.state != "failed":
            return False
        return record.retry_at < 0 or now_us() < record.retry_at

    @property
    def listening(self) -> bool:
        """True when new events would give it work now (the runner waits for them)."""
        return self.active and not self.backing_off

    @property
    def next_deadline(self) -> float:
        """The monotonic time of its next turn: lease renewal, retry or end of a backoff."""
        deadline = max(self._renew_at, self._wake_at)
        record = self.record
        if self.active and record is not None and record.state == "failed" and record.retry_at > 0:
            retry = time.monotonic() + (record.retry_at - now_us()) / 1e6
            deadline = min(deadline, max(retry, self._wake_at))
        return deadline

    def tick(self) -> bool:
        """Renew (or take) the lease when due, then process one batch; True if it did work.

        Never raises for a failure of the store or of the projection's code: the projection
        backs off (logging once per attempt) and the runner's other projections go on.
        """
        if time.monotonic() < self._wake_at:
            return False
        try:
            worked = self._tick()
        except Exception as exc:
            self._trouble(exc)
            return False
        self._troubles = 0
        return worked

    def _tick(self) -> bool:
        if time.monotonic() >= self._renew_at:
            self._lease()
        record = self.record
        if not self.active or record is None:
            return False
        if record.state == "failed" and (record.retry_at < 0 or now_us() < record.retry_at):
            return False
        try:
            if record.replay_parked is not None:
                self._replay_parked(record.replay_parked)
                return True
            if run_forget_hooks(self):
                return True
            return self._batch()
        except LeaseLost:
            self._lose("its lease was taken over")
            return False
        except CheckpointConflictError:
            log.warning("projection %s: checkpoint moved by someone else; re-reading", self.name)
            self._renew_at = 0.0
            return True

    def _trouble(self, exc: Exception) -> None:
        """The store failed (locked, unreachable) or the projection's own code outside a
        handler did (setup, reset, ...): back off, doubling, and log once per attempt."""
        self._troubles += 1
        policy = RetryPolicy(first=TROUBLE_FIRST, longest=max(TROUBLE_FIRST, self.lease_ttl / 3))
        delay = policy.delay(self._troubles) or policy.longest
        self._wake_at = time.monotonic() + delay
        self._renew_at = 0.0  # re-read the lease on the next turn
        self.caught_up = False
        if isinstance(exc, EventkeepError):
            log.warning(
                "projection %s: %s; attempt %d, next in %.2fs",
                self.name,
                exc,
                self._troubles,
                delay,
            )
            return
        log.error(
            "projection %s: its code failed (%s: %s); attempt %d, next in %.2fs",
            self.name,
            type(exc).__name__,
            exc,
            self._troubles,
            delay,
            exc_info=exc,
        )
        self._note_error(f"{type(exc).__name__}: {exc}", delay)

    def _note_error(self, error: str, delay: float) -> None:
        """Show a failure outside a handler in the projection's record (best effort)."""
        try:
            with self.store.transaction() as tx:
                record = load_record(tx, self.name)
                if record is None:
                    return
                if not lease_free(record, now_us()) and record.owner != self.owner:
                    return
                record.state = "failed"
                record.error = record.last_error = error
                record.retry_at = now_us() + int(delay * 1_000_000)
                save_record(tx, record)
        except Exception as exc:
            log.warning("projection %s: could not record its failure: %s", self.name, exc)

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
                    elif self._standing_by_for != record.owner:
                        log.info(
                            "projection %s: standing by, %s holds its lease (for %.1f s more)",
                            self.name,
                            record.owner,
                            max(0, record.lease_expires - now) / 1_000_000,
                        )
                    self._standing_by_for = record.owner
                    self.record = record
                    self._renew_at = time.monotonic() + min(self.lease_ttl / 3, STANDBY_POLL)
                    return
                record.fence += 1
                record.owner = self.owner
                took = True
                self._standing_by_for = None
            record.lease_expires = now + int(self.lease_ttl * 1_000_000)
            if fresh:
                replayed = tx.checkpoint(replay_marker(self.name))
                if replayed is not None:  # it was reset: what is in the log is a replay
                    record.replay_until = replayed
                    tx.delete_checkpoint(replay_marker(self.name))
                self._setup(tx, record.generation, activate=True, replay_until=replayed or 0)
                tx.save_checkpoint(self.name, 0, expected=None)
                record.forgotten_seq = record.built_seq = forget_log_end(tx)
            if took:
                self._on_take(tx, record)
            if record.rebuild_requested and record.rebuild_version is None:
                self._start_rebuild(tx, record, projection.version)
            save_record(tx, record)
            checkpoint = self._stored_checkpoint(tx, record)
        # Only once committed: a failure above (the store's, or the projection's own setup or
        # reset code) leaves the lease untaken and this job standing by.
        self.fence = record.fence
        self.record = record
        self.checkpoint = checkpoint
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

    def check_lease(self, tx: Transaction) -> ProjectionRecord:
        """The record, if this job still holds the lease (else ``LeaseLost``)."""
        return self._check_lease(tx)

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
        return HandlerContext(
            self.store, self.projection, tx, generation, replay_until=record.replay_until
        )

    def _transactional(self, batch: Batch) -> bool:
        """Handle a batch in one transaction with its checkpoint.

        When a handler fails, the batch is rolled back and the events before the failing one
        are handled again and committed on their own, so the read model is current up to the
        failing event and the checkpoint is right before it: the recorded failing position is
        exact, and a skip passes over that one event only.
        """
        events, end, caught_up = batch.events, batch.position, batch.caught_up
        failure: tuple[RecordedEvent, Exception] | None = None
        while events:
            try:
                self._commit(events, end, caught_up, cut=failure is None)
            except _HandlerFailed as failed:
                exc = failed.exc
                if (
                    failure is None
                    and isinstance(exc, ConcurrencyError)
                    and self.conflicts < CONFLICT_RETRIES
                ):
                    self.conflicts += 1
                    return True
                failure = (events[failed.index], exc)
                events = events[: failed.index]
                if events:
                    end, caught_up = events[-1].position, False
                continue
            break
        if failure is not None:
            self._failed(*failure)
        else:
            self.conflicts = 0
        return True

    def _commit(self, events: list[RecordedEvent], end: int, caught_up: bool, *, cut: bool) -> None:
        """Handle ``events`` and move the checkpoint to ``end``, in one transaction. With
        ``cut``, the batch ends early once it has held the transaction for
        ``max_batch_seconds``: the checkpoint then moves to the last event handled."""
        limit = self.projection.max_batch_seconds if cut else None
        started = time.monotonic()
        with (
            span("eventkeep.projection_batch", projection=self.name, events=len(events)),
            self.store.transaction() as tx,
        ):
            record = self._check_lease(tx)
            ctx = self._context(tx, record)
            handle = self.projection.handle
            last = len(events) - 1
            blocked = self._blocked_streams(record)
            behind: list[Parked] = []
            for index, recorded in enumerate(events):
                if recorded.stream_id in blocked:  # parked behind an earlier event of its stream
                    first = blocked[recorded.stream_id]
                    error = f"parked behind position {first} of its stream"
                    behind.append(_parked(recorded, error, behind=first))
                    continue
                ctx.recorded = recorded
                try:
                    if ENABLED:  # the span of the request that appended it, when it has one
                        with span(
                            "eventkeep.handle",
                            recorded.metadata.get("traceparent"),
                            projection=self.name,
                            position=recorded.position,
                        ):
                            handle(recorded, ctx)
                    else:
                        handle(recorded, ctx)
                except Exception as exc:
                    raise _HandlerFailed(index, exc) from exc
                if limit is not None and index < last and time.monotonic() - started >= limit:
                    end, caught_up = recorded.position, False
                    break
            tx.save_checkpoint(self._checkpoint_name(record), end, expected=self.checkpoint)
            if behind:
                record.parked = [*record.parked, *behind]
                save_record(tx, record)
                log.warning(
                    "projection %s: parked %d events behind parked events of their streams",
                    self.name,
                    len(behind),
                )
            self._progressed(tx, record, end, caught_up)
        self.checkpoint = end
        self.caught_up = caught_up

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
                    self._progressed(tx, record, batch.position, batch.caught_up)
            self.checkpoint = end
        if failure is not None:
            self._failed(*failure)
        return True

    def _progressed(
        self, tx: Transaction, record: ProjectionRecord, position: int, caught_up: bool
    ) -> None:
        """Bring the record's state up to date (written only when it changes)."""
        in_place = record.rebuild_generation is None and record.rebuild_version is not None
        if in_place and position >= record.rebuild_target:  # an in-place rebuild is done
            record.rebuild_version = None
            record.rebuild_target = 0
        state = "rebuilding" if record.rebuild_version is not None else None
        state = state or ("caught-up" if caught_up else "running")
        if record.state != state or record.error is not None or record.retries:
            record.state = state
            record.error = None
            record.failing_position = None
            record.failed_checkpoint = None
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
        stale = record.state != "caught-up" or record.error is not None
        if (batch.position > self.checkpoint and due) or stale:
            self._advanced_at = time.monotonic()
            with self.store.transaction() as tx:
                record = self._check_lease(tx)
                name = self._checkpoint_name(record)
                if batch.position > self.checkpoint:
                    tx.save_checkpoint(name, batch.position, expected=self.checkpoint)
                self._progressed(tx, record, batch.position, batch.caught_up)
            self.checkpoint = batch.position
        return False

    # -- failures -----------------------------------------------------------------------------

    def _blocked_streams(self, record: ProjectionRecord) -> dict[str, int]:
        """Streams whose later events wait behind a parked one: stream -> first parked."""
        if not (self.projection.park_failures and self.projection.park_stream_order):
            return {}
        blocked: dict[str, int] = {}
        for parked in sorted(record.parked, key=lambda p: p.position):
            blocked.setdefault(parked.stream_id, parked.position)
        return blocked

    def _park(self, recorded: RecordedEvent, exc: Exception) -> None:
        """Set a failing event aside (``park_failures``) and move the checkpoint over it."""
        error = f"{type(exc).__name__}: {exc}"
        with self.store.transaction() as tx:
            record = self._check_lease(tx)
            name = self._checkpoint_name(record)
            tx.save_checkpoint(name, recorded.position, expected=self.checkpoint)
            record.parked = [
                *(p for p in record.parked if p.position != recorded.position),
                _parked(recorded, error),
            ]
            record.last_error = error
            save_record(tx, record)
            self.record = record
        self.checkpoint = recorded.position
        self.conflicts = 0
        log.error(
            "projection %s parked the event at position %d (%s %s@%d): %s",
            self.name,
            recorded.position,
            recorded.type,
            recorded.stream_id,
            recorded.version,
            error,
            exc_info=exc,
        )

    def _replay_parked(self, wanted: list[int]) -> None:
        """Handle parked events again, in position order, each in its own transaction; those
        that succeed leave the list, the others stay with their new error."""
        with self.store.transaction() as tx:
            record = self._check_lease(tx)
            record.replay_parked = None
            save_record(tx, record)
            self.record = record
        wanted = wanted or sorted(p.position for p in record.parked)
        done = 0
        for position in sorted(wanted):
            events = list(self.store.read_all(position - 1, 1))
            if not events or events[0].position != position:
                continue
            recorded = events[0]
            try:
                with self.store.transaction() as tx:
                    record = self._check_lease(tx)
                    parked = {p.position: p for p in record.parked}
                    if position not in parked:
                        continue
                    earlier = [
                        p
                        for p in record.parked
                        if p.stream_id == recorded.stream_id and p.position < position
                    ]
                    if earlier and self.projection.park_stream_order:
                        continue  # still behind an earlier parked event of its stream
                    ctx = self._context(tx, record)
                    ctx.recorded = recorded
                    self.projection.handle(recorded, ctx)
                    record.parked = [p for p in record.parked if p.position != position]
                    save_record(tx, record)
                    self.record = record
                done += 1
            except (LeaseLost, CheckpointConflictError):
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                with self.store.transaction() as tx:
                    record = self._check_lease(tx)
                    record.parked = [
                        p
                        if p.position != position
                        else msgspec.structs.replace(
                            p, error=error, behind=None, attempts=p.attempts + 1, at=now_us()
                        )
                        for p in record.parked
                    ]
                    save_record(tx, record)
                    self.record = record
                log.warning(
                    "projection %s: parked event %d failed again: %s", self.name, position, error
                )
        log.info("projection %s: %d parked events handled on replay", self.name, done)

    def _failed(self, recorded: RecordedEvent, exc: Exception) -> None:
        if self.projection.park_failures and not isinstance(exc, ConcurrencyError):
            self._park(recorded, exc)
            return
        error = f"{type(exc).__name__}: {exc}"
        with self.store.transaction() as tx:
            record = self._check_lease(tx)
            again = record.failing_position == recorded.position
            record.retries = record.retries + 1 if again else 1
            delay = self.retry.delay(record.retries)
            record.state = "failed"
            record.error = record.last_error = error
            record.failing_position = recorded.position
            record.failed_checkpoint = self.checkpoint  # exact: everything before is committed
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

    def _setup(
        self, tx: Transaction, generation: int, *, activate: bool, replay_until: int = 0
    ) -> None:
        ctx = HandlerContext(self.store, self.projection, tx, generation, replay_until=replay_until)
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
        record.built_seq = forget_log_end(tx)
        record.replay_until = record.rebuild_target
        record.parked = []  # the replay parks again whatever still fails
        record.state = "rebuilding"
        record.error = None
        record.failing_position = None
        record.retries = 0
        record.retry_at = 0
        if self.projection.tables and tx.supports_sql:
            # Blue/green: fill a fresh generation while readers keep the current one.
            record.rebuild_generation = record.generation + 1
            self._setup(
                tx, record.rebuild_generation, activate=False, replay_until=record.replay_until
            )
            name = rebuild_checkpoint(self.name)
            tx.delete_checkpoint(name)
            tx.save_checkpoint(name, 0, expected=None)
        else:
            # In place: clear the read model and replay into it.
            self.projection.reset()
            self._setup(tx, record.generation, activate=True, replay_until=record.replay_until)
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
