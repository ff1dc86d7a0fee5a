"""The tamper-evidence hash chain, and the verifier that walks it.

Each stored event carries ``sha256(previous hash of its stream || envelope)``, where the envelope
is the msgpack encoding of ``(stream_id, version, event_id, type, schema_version, recorded_at
in microseconds, data bytes, metadata bytes)``. msgpack length-prefixes every field, so the form is
unambiguous. The global position is left out on purpose: a backend may assign it at commit time.
The first event of a stream chains to 32 zero bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

import msgspec

__all__ = [
    "GENESIS",
    "BrokenLink",
    "ChainRow",
    "ChainedEvent",
    "VerifyReport",
    "chain_events",
    "chain_hash",
    "verify_chains",
]

GENESIS = bytes(32)
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
) -> bytes:
    envelope = _pack(
        (stream_id, version, event_id, type_name, schema_version, recorded_at_us, data, metadata)
    )
    return _sha256(previous + envelope).digest()


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
        envelope = pack(
            (
                stream_id,
                version,
                ev.event_id,
                ev.type,
                ev.schema_version,
                recorded_at_us,
                ev.data,
                ev.metadata,
            )
        )
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


class BrokenLink(NamedTuple):
    """The first place a stream's history does not match its hash chain."""

    stream_id: str
    version: int
    position: int | None
    reason: str


class VerifyReport(NamedTuple):
    events_checked: int
    streams_checked: int
    broken: tuple[BrokenLink, ...]

    @property
    def ok(self) -> bool:
        return not self.broken


def verify_chains(rows: Iterable[ChainRow], heads: dict[str, int]) -> VerifyReport:
    """Walk every stream's chain; report the first broken link per stream.

    ``heads`` maps each stream to the version the store believes is its last, so that a deleted
    tail (or a stream whose events vanished entirely) is caught as well.
    """
    broken: list[BrokenLink] = []
    events = 0
    seen: dict[str, int] = {}
    current: str | None = None
    previous = GENESIS
    expected_version = 1
    failed = False
    for row in rows:
        events += 1
        if row.stream_id != current:
            if current is not None:
                seen[current] = expected_version - 1
            current, previous, expected_version, failed = row.stream_id, GENESIS, 1, False
        if failed:
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
        digest = chain_hash(
            previous,
            row.stream_id,
            row.version,
            row.event_id,
            row.type,
            row.schema_version,
            row.recorded_at_us,
            row.data,
            row.metadata,
        )
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
        expected_version += 1
    if current is not None:
        seen[current] = expected_version - 1
    reported = {link.stream_id for link in broken}
    for stream_id, head in sorted(heads.items()):
        if stream_id in reported:
            continue
        last = seen.get(stream_id, 0)
        if last < head:
            broken.append(
                BrokenLink(
                    stream_id,
                    last + 1,
                    None,
                    f"stream is at version {head} but events after version {last} are missing",
                )
            )
    for stream_id in sorted(set(seen) - set(heads) - reported):
        broken.append(BrokenLink(stream_id, 1, None, "events stored for a stream with no head"))
    broken.sort(key=lambda link: link.stream_id)
    return VerifyReport(events, len(set(seen) | set(heads)), tuple(broken))
