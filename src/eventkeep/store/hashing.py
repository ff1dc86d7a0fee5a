"""The tamper-evidence hash chain, and the verifier that walks it.

Each stored event carries ``sha256(previous hash of its stream || envelope)``, where the envelope
is the msgpack encoding of ``(stream_id, version, event_id, type, schema_version, recorded_at
in microseconds, data bytes, metadata bytes)``. msgpack length-prefixes every field, so the form is
unambiguous. The global position is left out on purpose: a backend may assign it at commit time.
The first event of a stream chains to 32 zero bytes.

An event with tags (:mod:`eventkeep.store.dcb`) has them hashed too, as a ninth field (the
sorted list of tags); an event without tags has the eight-field envelope above, so chains
written before tags existed verify unchanged, and a tag added, removed or changed behind the
store's back breaks the chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

import msgspec

__all__ = [
    "GENESIS",
    "BrokenLink",
    "ChainRow",
    "ChainStart",
    "ChainedEvent",
    "StreamHead",
    "VerifyReport",
    "chain_events",
    "chain_hash",
    "row_hash",
    "verify_chains",
]

GENESIS = bytes(32)
PROGRESS_EVERY = 2048
"""How many events ``verify_chains`` checks between two calls of its ``progress``."""
_pack = msgspec.msgpack.Encoder().encode
_sha256 = hashlib.sha256


def chain_hash(
    previous: bytes,
    stream_id: str,
    version: int,
    event_id: bytes,
    type_name: str,
    schema_version: int,
    recorded_at_us: int,
    data: bytes,
    metadata: bytes,
    tags: Sequence[str] = (),
) -> bytes:
    fields: tuple[object, ...] = (
        stream_id,
        version,
        event_id,
        type_name,
        schema_version,
        recorded_at_us,
        data,
        metadata,
    )
    if tags:
        fields += (list(tags),)
    return _sha256(previous + _pack(fields)).digest()


class ChainedEvent(Protocol):
    """What the chain needs of an event being appended (a ``codec.PreparedEvent``)."""

    @property
    def event_id(self) -> bytes: ...
    @property
    def type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def data(self) -> bytes: ...
    @property
    def metadata(self) -> bytes: ...
    @property
    def tags(self) -> tuple[str, ...]: ...

    # and, optionally, ``tags``: a tuple of str (none when missing)


def chain_events(
    previous: bytes,
    stream_id: str,
    version: int,
    events: Sequence[ChainedEvent],
    recorded_at_us: int,
) -> list[bytes]:
    """The hashes of ``events`` appended to a stream now at ``version``, whose last hash is
    ``previous``: one per event, each chained to the one before. Every backend appends with it.
    """
    hashes: list[bytes] = []
    append = hashes.append
    pack, sha256 = _pack, _sha256
    for ev in events:
        version += 1
        # chain_hash, inlined: this loop runs once per appended event.
        tags = ev.tags
        fields = (
            stream_id,
            version,
            ev.event_id,
            ev.type,
            ev.schema_version,
            recorded_at_us,
            ev.data,
            ev.metadata,
        )
        # Tags are a ninth field only when present: chains of untagged events are unchanged.
        envelope = pack((*fields, list(tags)) if tags else fields)
        previous = sha256(previous + envelope).digest()
        append(previous)
    return hashes


class ChainRow(NamedTuple):
    """One stored event as the verifier needs it, in (stream_id, version) order."""

    stream_id: str
    version: int
    position: int
    event_id: bytes
    type: str
    schema_version: int
    recorded_at_us: int
    data: bytes
    metadata: bytes
    hash: bytes
    tags: tuple[str, ...] = ()


def row_hash(previous: bytes, row: ChainRow) -> bytes:
    """The hash ``row`` must have to follow ``previous`` in its stream's chain (its stored
    ``hash`` is this when nothing was changed)."""
    return chain_hash(
        previous,
        row.stream_id,
        row.version,
        row.event_id,
        row.type,
        row.schema_version,
        row.recorded_at_us,
        row.data,
        row.metadata,
        row.tags,
    )


class BrokenLink(NamedTuple):
    """The first place a stream's history does not match its hash chain."""

    stream_id: str
    version: int
    position: int | None
    reason: str


class StreamHead(NamedTuple):
    """What the store's stream heads table says of a stream: its version and, where the backend
    keeps them, the position and hash of its last event (None: not kept, not compared)."""

    version: int
    last_position: int | None = None
    last_hash: bytes | None = None


class VerifyReport(NamedTuple):
    """What ``verify`` found. ``broken``: the first broken link of each damaged stream;
    ``problems``: damage not tied to one stream (the database file, an anchor); ``checked`` and
    ``not_checked``: what this run did and did not look at, in words."""

    events_checked: int
    streams_checked: int
    broken: tuple[BrokenLink, ...]
    problems: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()
    not_checked: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.broken and not self.problems


class ChainStart(NamedTuple):
    """Where a stream's chain starts when a logged operation removed its first events: after
    ``version``, whose event was at ``position`` with hash ``hash``."""

    version: int
    position: int
    hash: bytes


def verify_chains(
    rows: Iterable[ChainRow],
    heads: Mapping[str, int | StreamHead] | None,
    starts: Mapping[str, ChainStart] | None = None,
    progress: Callable[[int], object] | None = None,
) -> VerifyReport:
    """Walk every stream's chain; report the first broken link per stream.

    ``starts``: the streams whose first events a logged operation removed (see
    :mod:`eventkeep.store.lifecycle`): their chains verify from the logged hash of the last
    removed event, and an event still stored among the removed ones is reported.

    ``heads`` maps each stream to its head as the store keeps it (a version, or a
    :class:`StreamHead`), so that a deleted tail (or a stream whose events vanished entirely)
    is caught, and so is a head that does not match its chain's last event; None for a store
    that keeps no heads (PostgreSQL: a stream's head is its last event). Within a stream,
    positions must increase with versions (a swap of two events' positions breaks that).

    ``progress(events_checked)`` is called every ``PROGRESS_EVERY`` events, and at the end.
    """
    broken: list[BrokenLink] = []
    events = 0
    seen: dict[str, tuple[int, int, bytes]] = {}  # stream -> last (version, position, hash)
    current: str | None = None
    previous = GENESIS
    expected_version = 1
    last_position = 0
    failed = False
    starts = starts or {}
    for row in rows:
        events += 1
        if progress is not None and not events % PROGRESS_EVERY:
            progress(events)
        if row.stream_id != current:
            if current is not None:
                seen[current] = (expected_version - 1, last_position, previous)
            current, previous, expected_version, failed = row.stream_id, GENESIS, 1, False
            last_position = 0
            start = starts.get(current)
            if start is not None:
                expected_version, last_position, previous = (
                    start.version + 1,
                    start.position,
                    start.hash,
                )
        if failed:
            continue
        if row.version < expected_version and row.stream_id in starts:
            broken.append(
                BrokenLink(
                    row.stream_id,
                    row.version,
                    row.position,
                    f"version {row.version} is still stored, though a logged operation removed "
                    f"versions up to {expected_version - 1}",
                )
            )
            failed = True
            continue
        if row.position <= last_position:
            broken.append(
                BrokenLink(
                    row.stream_id,
                    row.version,
                    row.position,
                    f"position {row.position} is not after the position of version "
                    f"{row.version - 1} ({last_position}): positions were reordered",
                )
            )
            failed = True
            continue
        if row.version != expected_version:
            broken.append(
                BrokenLink(
                    row.stream_id,
                    expected_version,
                    None,
                    f"version {expected_version} is missing (found version {row.version} "
                    f"next, at position {row.position})",
                )
            )
            failed = True
            continue
        digest = row_hash(previous, row)
        if digest != row.hash:
            broken.append(
                BrokenLink(
                    row.stream_id,
                    row.version,
                    row.position,
                    "stored hash does not match the event's contents and its predecessor",
                )
            )
            failed = True
            continue
        previous = digest
        last_position = row.position
        expected_version += 1
    if current is not None:
        seen[current] = (expected_version - 1, last_position, previous)
    if progress is not None:
        progress(events)
    if heads is None:
        broken.sort(key=lambda link: link.stream_id)
        return VerifyReport(events, len(seen), tuple(broken))
    reported = {link.stream_id for link in broken}
    for stream_id, kept in sorted(heads.items()):
        if stream_id in reported:
            continue
        head = kept if isinstance(kept, StreamHead) else StreamHead(kept)
        start = starts.get(stream_id)
        last, position, digest = seen.get(
            stream_id,
            (0, 0, GENESIS) if start is None else (start.version, start.position, start.hash),
        )
        if last < head.version:
            broken.append(
                BrokenLink(
                    stream_id,
                    last + 1,
                    None,
                    f"stream is at version {head.version} but events after version {last} "
                    "are missing",
                )
            )
        elif last > head.version:
            broken.append(
                BrokenLink(
                    stream_id,
                    head.version + 1,
                    None,
                    f"the stream's head says version {head.version} but its events go on to "
                    f"version {last}",
                )
            )
        elif head.last_position is not None and head.last_position != position:
            broken.append(
                BrokenLink(
                    stream_id,
                    last,
                    position,
                    f"the stream's head says its last event is at position "
                    f"{head.last_position}, but it is at {position}",
                )
            )
        elif head.last_hash is not None and head.last_hash != digest:
            broken.append(
                BrokenLink(
                    stream_id,
                    last,
                    position,
                    "the stream's head holds another hash than its last event",
                )
            )
    for stream_id in sorted(set(seen) - set(heads) - reported):
        broken.append(BrokenLink(stream_id, 1, None, "events stored for a stream with no head"))
    broken.sort(key=lambda link: link.stream_id)
    return VerifyReport(events, len(set(seen) | set(heads)), tuple(broken))
