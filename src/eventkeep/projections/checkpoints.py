"""Projection records: version, generation, state, last error and lease, one per projection.

A record is read and written only inside a store transaction, which serializes them (SQLite's
write lock, the memory store's lock, a row lock on PostgreSQL), so taking a lease is a plain
read-modify-write. The lease carries a *fence*: a number that grows each time the lease changes
hands. A runner checks its fence in the same transaction as each batch, so a runner that lost
its lease (paused, partitioned) cannot commit; and the compare-and-set on the checkpoint makes
double-processing impossible even without the lease.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import time
import uuid
from typing import NamedTuple

import msgspec

from eventkeep.errors import NotFoundError, ValidationError
from eventkeep.projections.names import quoted_table
from eventkeep.store import EventStore
from eventkeep.store.base import Transaction
from eventkeep.store.recorded import to_micros
from eventkeep.store.replicas import ReadsFromReplica, ReplicaLag

__all__ = [
    "Parked",
    "ProjectionRecord",
    "ProjectionStatus",
    "discard_parked",
    "load_record",
    "make_owner",
    "parked_events",
    "projection_status",
    "rebuild_checkpoint",
    "replay_marker",
    "replay_parked",
    "request_rebuild",
    "reset_projection",
    "retry_projection",
    "save_record",
    "skip_event",
]

log = logging.getLogger("eventkeep.projections")

STATES = ("running", "caught-up", "stopped", "failed", "rebuilding")


class Skip(msgspec.Struct, frozen=True):
    """An operator's decision to skip a poison event, kept for the record."""

    position: int
    error: str | None
    reason: str
    at: int  # microseconds since the epoch
    by: str = ""  # who skipped it (an operator name; default user@host)
    after: int | None = None  # the checkpoint it was skipped from (position - 1 in the log)


class Parked(msgspec.Struct, frozen=True):
    """An event set aside (dead-lettered) by a projection with ``park_failures``: its handler
    failed (``behind`` None), or, with ``park_stream_order``, an earlier event of its stream
    is parked (``behind`` is that event's position)."""

    position: int
    stream_id: str
    type: str
    error: str
    at: int  # microseconds since the epoch
    behind: int | None = None
    attempts: int = 1


class ProjectionRecord(msgspec.Struct, kw_only=True):
    name: str
    version: int
    generation: int = 1
    tables: list[str] = msgspec.field(default_factory=list)
    state: str = "stopped"
    owner: str | None = None
    fence: int = 0
    lease_expires: int = 0  # microseconds since the epoch
    error: str | None = None
    last_error: str | None = None
    failing_position: int | None = None
    failed_checkpoint: int | None = None  # the checkpoint when it failed: right before the event
    retries: int = 0
    retry_at: int = 0  # microseconds; 0 = at once, -1 = only after an operator's retry
    rebuild_requested: bool = False
    rebuild_version: int | None = None  # a rebuild in progress, to this version
    rebuild_generation: int | None = None  # ...into this generation (None: in place)
    rebuild_target: int = 0  # the head when the rebuild started (for progress)
    replay_until: int = 0  # events up to here are a replay (rebuild or reset): ctx.replaying
    skips: list[Skip] = msgspec.field(default_factory=list)
    parked: list[Parked] = msgspec.field(default_factory=list)
    replay_parked: list[int] | None = None  # an operator asked to replay these (empty: all)
    updated_at: int = 0
    forgotten_seq: int = 0  # the forget log entry up to which the forgotten hook has run
    built_seq: int = 0  # the forget log's last entry when the read model was last (re)built


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ProjectionRecord).decode


def now_us() -> int:
    return time.time_ns() // 1000


def load_record(tx: Transaction, name: str) -> ProjectionRecord | None:
    data = tx.record(name)
    return None if data is None else _decode(data)


def save_record(tx: Transaction, record: ProjectionRecord) -> None:
    record.updated_at = now_us()
    tx.save_record(record.name, _encode(record))


def rebuild_checkpoint(name: str) -> str:
    """The checkpoint of a blue/green rebuild in progress (the live one is ``name``)."""
    return f"{name}#rebuild"


def replay_marker(name: str) -> str:
    """Left by a reset: the head at that moment, so that the next run knows the events up to
    there are a replay (a reset forgets the record that would otherwise say so)."""
    return f"{name}#replay"


# -- leases -------------------------------------------------------------------------------------


def make_owner() -> str:
    """A runner's identity: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_free(record: ProjectionRecord, now: int) -> bool:
    """True when nobody holds the lease: never taken, released, expired, or its holder is a
    process of this host that has died (no need to wait for the expiry then)."""
    if record.owner is None or record.lease_expires <= now:
        return True
    return _dead_here(record.owner)


def _dead_here(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


# -- status -------------------------------------------------------------------------------------


class ProjectionStatus(NamedTuple):
    name: str
    version: int
    state: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    owner: str | None
    error: str | None
    last_error: str | None
    failing_position: int | None
    retries: int
    rebuild_progress: float | None  # 0..1 while a rebuild runs
    skips: tuple[Skip, ...] = ()  # events operators skipped, oldest first (who, why, when)
    parked: int = 0  # events set aside by a projection with park_failures
    forgotten: tuple[str, ...] = ()  # subjects forgotten since the read model's last (re)build
    replica: ReplicaLag | None = None  # the lag of the replica the store reads from, if any


def projection_status(store: EventStore, name: str | None = None) -> list[ProjectionStatus]:
    """Every projection's (or one's) position, lag, state and last error."""
    raw, stored = store.projection_state()  # one view, taking no lock a runner needs
    records = [_decode(data) for _, data in raw]
    checkpoints = {r.name: stored.get(r.name, 0) for r in records}
    rebuilds = {r.name: stored.get(rebuild_checkpoint(r.name), 0) for r in records}
    if name is not None:
        records = [r for r in records if r.name == name]
        if not records:
            raise NotFoundError(f"no projection named {name!r} has run on {store.url}")
    replica = store.replica_lag() if isinstance(store, ReadsFromReplica) else None
    # Behind the primary's head: what a replica has not replayed yet is lag too.
    head = store.head_position() if replica is None else replica.primary_head
    now = now_us()
    forgets = store.forgotten_subjects(min((r.built_seq for r in records), default=0))
    out = []
    for record in records:
        position = checkpoints[record.name]
        state = record.state
        if state != "stopped" and (record.owner is None or record.lease_expires <= now):
            state = "failed" if state == "failed" else "stopped"
        lag_seconds = 0.0
        if position < head:
            for first in store.read_all(position, 1):
                lag_seconds = max(0.0, (now - to_micros(first.recorded_at)) / 1e6)
            if replica is not None:  # at least as late as the replica it reads from
                lag_seconds = max(lag_seconds, replica.seconds_behind)
        progress = None
        if record.rebuild_version is not None:
            done = rebuilds[record.name] if record.rebuild_generation else position
            progress = 1.0 if not record.rebuild_target else min(1.0, done / record.rebuild_target)
        out.append(
            ProjectionStatus(
                record.name,
                record.version,
                state,
                position,
                head,
                max(0, head - position),
                lag_seconds,
                record.owner if state != "stopped" else None,
                record.error,
                record.last_error,
                record.failing_position,
                record.retries,
                progress,
                tuple(record.skips),
                len(record.parked),
                tuple(dict.fromkeys(f.subject for f in forgets if f.seq > record.built_seq)),
                replica,
            )
        )
    return out


# -- operator actions ---------------------------------------------------------------------------


def _existing(tx: Transaction, name: str) -> ProjectionRecord:
    record = load_record(tx, name)
    if record is None:
        raise NotFoundError(f"no projection named {name!r} has run on {tx.store.url}")
    return record


def operator_name() -> str:
    """Who is acting, for the record: ``user@host``."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in the environment or the password database
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def skip_event(
    store: EventStore, name: str, position: int, *, reason: str, by: str | None = None
) -> None:
    """Skip the poison event at ``position`` of a failed projection: an explicit, logged act.

    Refused unless the projection is failed at exactly that position, with every event before
    it committed (the runner does that when a batch fails). Its checkpoint moves over that one
    event; who skipped it (``by``, default ``user@host``), why and when are kept in the
    projection's record (and shown by its status), and logged at WARNING level.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("a skip needs a reason")
    who = (by or "").strip() or operator_name()
    with store.transaction() as tx:
        record = _existing(tx, name)
        if record.state != "failed" or record.failing_position != position:
            raise ValidationError(
                f"projection {name!r} is not failed at position {position} "
                f"(state {record.state}, failing position {record.failing_position}); "
                "only the failing event can be skipped"
            )
        checkpoint = name if record.rebuild_generation is None else rebuild_checkpoint(name)
        current = tx.checkpoint(checkpoint) or 0
        if record.failed_checkpoint is None or current != record.failed_checkpoint:
            raise ValidationError(
                f"projection {name!r} has not committed the events before position {position} "
                f"(its checkpoint is {current}); retry it first "
                f"(eventkeep projections retry {name}), then skip if it fails there again"
            )
        tx.save_checkpoint(checkpoint, position, expected=current)
        record.skips.append(Skip(position, record.error, reason.strip(), now_us(), who, current))
        record.state = "running"
        record.error = None
        record.failing_position = None
        record.failed_checkpoint = None
        record.retries = 0
        record.retry_at = 0
        save_record(tx, record)
    log.warning(
        "projection %s: the event at position %d was skipped by %s (%s)",
        name,
        position,
        who,
        reason,
    )


def parked_events(store: EventStore, name: str) -> list[Parked]:
    """The events a projection has parked, in position order."""
    with store.transaction() as tx:
        record = _existing(tx, name)
    return sorted(record.parked, key=lambda p: p.position)


def replay_parked(store: EventStore, name: str, positions: list[int] | None = None) -> int:
    """Ask the projection's runner to handle its parked events again (all, or ``positions``),
    in position order; those that now succeed leave the list. Returns how many are asked for."""
    with store.transaction() as tx:
        record = _existing(tx, name)
        known = {p.position for p in record.parked}
        wanted = sorted(known if not positions else set(positions))
        missing = [p for p in wanted if p not in known]
        if missing:
            raise ValidationError(f"projection {name!r} has no parked event at {missing}")
        record.replay_parked = wanted
        save_record(tx, record)
    log.info("projection %s: replay of %d parked events requested", name, len(wanted))
    return len(wanted)


def discard_parked(
    store: EventStore,
    name: str,
    positions: list[int] | None = None,
    *,
    reason: str,
    by: str | None = None,
) -> int:
    """Give up on parked events (all, or ``positions``): each becomes a skip on record (who,
    why, when), like :func:`skip_event`. Returns how many were discarded."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("discarding parked events needs a reason")
    who = (by or "").strip() or operator_name()
    with store.transaction() as tx:
        record = _existing(tx, name)
        known = {p.position: p for p in record.parked}
        wanted = sorted(known if not positions else set(positions))
        missing = [p for p in wanted if p not in known]
        if missing:
            raise ValidationError(f"projection {name!r} has no parked event at {missing}")
        now = now_us()
        for position in wanted:
            record.skips.append(Skip(position, known[position].error, reason.strip(), now, who))
        record.parked = [p for p in record.parked if p.position not in set(wanted)]
        save_record(tx, record)
    log.warning("projection %s: %s discarded %d parked events (%s)", name, who, len(wanted), reason)
    return len(wanted)


def retry_projection(store: EventStore, name: str) -> None:
    """Let a failed projection retry at once (also after its retry policy gave up)."""
    with store.transaction() as tx:
        record = _existing(tx, name)
        record.retry_at = 0
        save_record(tx, record)
    log.info("projection %s: retry requested by an operator", name)


def request_rebuild(store: EventStore, name: str) -> None:
    """Ask the runner that holds the projection to rebuild it (blue/green, no downtime)."""
    with store.transaction() as tx:
        record = _existing(tx, name)
        record.rebuild_requested = True
        save_record(tx, record)
    log.info("projection %s: rebuild requested", name)


def reset_projection(store: EventStore, name: str, *, force: bool = False) -> None:
    """Forget a projection: drop its tables (every generation), checkpoints and record.

    The next runner starts it from scratch (readers see no table until it has caught up again;
    use a rebuild to avoid that). Refused while a runner holds its lease, unless ``force``.
    """
    with store.transaction() as tx:
        record = _existing(tx, name)
        if not force and not lease_free(record, now_us()):
            raise ValidationError(
                f"projection {name!r} is being run by {record.owner}; stop it first "
                "(or force the reset)"
            )
        if record.tables and tx.supports_sql:
            generations = {record.generation, record.rebuild_generation or record.generation}
            what = f"projection record {name!r}"
            for table in record.tables:
                tx.execute(f"DROP VIEW IF EXISTS {quoted_table(table, what=what)}")
                for generation in sorted(generations):
                    tx.execute(f"DROP TABLE IF EXISTS {quoted_table(table, generation, what=what)}")
        tx.delete_checkpoint(name)
        tx.delete_checkpoint(rebuild_checkpoint(name))
        tx.delete_record(name)
        tx.delete_checkpoint(replay_marker(name))
        replayed = max(store.head_position(), record.replay_until)
        tx.save_checkpoint(replay_marker(name), replayed, expected=None)
    log.warning("projection %s: reset (read model dropped, checkpoint deleted)", name)
