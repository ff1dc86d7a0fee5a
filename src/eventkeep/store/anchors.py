"""Anchors: small signed statements of a store's whole history up to a position.

The hash chains make a change to one stream's history detectable, but anyone who can write to
the database can also recompute them (the algorithm is public), delete a whole stream, or
replace the file. An anchor, kept where the database's administrator cannot rewrite it, fixes
the history up to its position with a key the store does not hold:

- ``position``: the log's head position when the anchor was made (it covers every event at or
  below it; events appended later are outside it);
- ``events``: how many events the log holds up to ``position``;
- ``log_digest``: a hash chain over every event's ``(position, stream_id, version, event
  hash)`` in position order, from a fixed genesis value, so it also fixes the global order, the
  positions and (through each event's own hash) every event's contents;
- ``streams`` and ``heads_digest``: how many streams existed at ``position``, and a digest of
  each one's head there ``(stream_id, version, position, hash)``, in stream id order;
- a signature over all of the above: Ed25519 (``cryptography``, the ``crypto`` extra), or
  HMAC-SHA256 with a shared secret.

The log digest is a left fold, so an anchor can extend a previous one (digest only the events
after it) and be verified from any earlier anchor one trusts: the result is the same as from
the start. This module is pure: backends supply the rows (:class:`AnchorSource`).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

import msgspec

from eventkeep.errors import AnchorError, ConfigurationError

__all__ = [
    "ANCHOR_FORMAT",
    "KEY_ENV_VAR",
    "Anchor",
    "AnchorHead",
    "AnchorKey",
    "AnchorRow",
    "AnchorSource",
    "check_anchor",
    "digest_heads",
    "digest_log",
    "generate_ed25519_key",
    "load_key",
    "make_anchor",
    "read_anchor",
    "read_key",
]

ANCHOR_FORMAT: Final = 1
KEY_ENV_VAR: Final = "EVENTKEEP_ANCHOR_KEY"
LOG_GENESIS: Final = hashlib.sha256(b"eventkeep anchor log v1").digest()
_HEADS_TAG: Final = b"eventkeep anchor heads v1"
_SIGNED_TAG: Final = b"eventkeep anchor v1\n"
_MIN_SECRET: Final = 32
_pack = msgspec.msgpack.Encoder().encode


class AnchorRow(NamedTuple):
    """One stored event as an anchor covers it."""

    position: int
    stream_id: str
    version: int
    hash: bytes


class AnchorHead(NamedTuple):
    """A stream's last event at or below an anchor's position."""

    stream_id: str
    version: int
    position: int
    hash: bytes


class AnchorSource(Protocol):
    """What a backend supplies, all read from one snapshot of the store."""

    def head_position(self) -> int:
        """The log's head position in this snapshot."""
        ...

    def rows(self, after: int, upto: int) -> Iterator[AnchorRow]:
        """Every event with ``after < position <= upto``, in position order."""
        ...

    def heads(self, upto: int) -> Iterator[AnchorHead]:
        """Each stream's last event at or below ``upto``, in stream id order."""
        ...


class Extends(msgspec.Struct, frozen=True, kw_only=True):
    """The earlier anchor a new one was computed from (informational; signed with the rest)."""

    position: int
    events: int
    log_digest: str


class Anchor(msgspec.Struct, frozen=True, kw_only=True):
    """A signed statement of the store's history up to ``position``; see the module docs.

    ``to_json()`` gives the document to keep; :func:`read_anchor` reads it back.
    """

    format: int = ANCHOR_FORMAT
    position: int
    events: int
    streams: int
    log_digest: str  # hex
    heads_digest: str  # hex
    created_at: str  # ISO 8601, UTC; the clock of the machine that made it (not proven)
    extends: Extends | None = None
    algorithm: str
    key_id: str
    signature: str = ""  # base64

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2) + b"\n"

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers: everything but the signature."""
        return _SIGNED_TAG + msgspec.json.encode(msgspec.structs.replace(self, signature=""))


class _Format(msgspec.Struct):
    format: int


def read_anchor(data: bytes | str) -> Anchor:
    """Parse an anchor document; raises :class:`AnchorError` if it is not one."""
    try:
        version = msgspec.json.decode(data, type=_Format).format
        if version != ANCHOR_FORMAT:
            raise AnchorError(
                f"anchor format {version} is not one this eventkeep reads ({ANCHOR_FORMAT})"
            )
        anchor = msgspec.json.decode(data, type=Anchor)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise AnchorError(f"not an eventkeep anchor: {exc}") from None
    if min(anchor.position, anchor.events, anchor.streams) < 0 or anchor.events > anchor.position:
        raise AnchorError("malformed anchor: impossible position or counts")
    for name in ("log_digest", "heads_digest"):
        value = getattr(anchor, name)
        if len(value) != 64 or not _is_hex(value):
            raise AnchorError(f"malformed anchor: {name} is not a sha256 in hex")
    return anchor


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


# -- keys -----------------------------------------------------------------------------------


class AnchorKey:
    """A key to sign anchors with, or only to check them (an Ed25519 public key).

    Make one with :func:`load_key` / :func:`read_key`; never store it in the event store.
    """

    def __init__(
        self,
        algorithm: str,
        key_id: str,
        sign: Callable[[bytes], bytes] | None,
        check: Callable[[bytes, bytes], bool],
    ) -> None:
        self.algorithm = algorithm
        self.key_id = key_id
        self._sign = sign
        self._check = check

    @property
    def can_sign(self) -> bool:
        return self._sign is not None

    def sign(self, message: bytes) -> bytes:
        if self._sign is None:
            raise ConfigurationError(
                "this is an Ed25519 public key: it can check anchors but not sign them "
                "(sign with the private key)"
            )
        return self._sign(message)

    def check(self, message: bytes, signature: bytes) -> bool:
        return self._check(message, signature)

    def __repr__(self) -> str:
        return f"AnchorKey({self.algorithm}, id {self.key_id})"


def _key_id(tag: bytes, material: bytes) -> str:
    return hashlib.sha256(tag + material).hexdigest()[:16]


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:  # pragma: no cover - the extra is installed in development
        raise ConfigurationError(
            "Ed25519 anchor keys need the cryptography package: pip install 'eventkeep[crypto]'"
        ) from None
    return serialization


def load_key(material: bytes | str) -> AnchorKey:
    """A key from its text: an Ed25519 private or public key in PEM, or else an HMAC-SHA256
    secret (at least 32 bytes; surrounding whitespace is ignored)."""
    data = material.encode() if isinstance(material, str) else bytes(material)
    data = data.strip()
    if data.startswith(b"-----BEGIN"):
        return _load_pem(data)
    if len(data) < _MIN_SECRET:
        raise ConfigurationError(
            f"an HMAC anchor secret must be at least {_MIN_SECRET} bytes (got {len(data)}); "
            "or give an Ed25519 key in PEM"
        )
    secret = data

    def sign(message: bytes) -> bytes:
        return hmac.digest(secret, message, "sha256")

    def check(message: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(sign(message), signature)

    return AnchorKey("hmac-sha256", _key_id(b"eventkeep hmac key ", secret), sign, check)


def _load_pem(data: bytes) -> AnchorKey:
    serialization = _crypto()
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ed25519

    try:
        if b"PRIVATE KEY" in data.split(b"\n", 1)[0]:
            private = serialization.load_pem_private_key(data, password=None)
            public = private.public_key()
        else:
            private = None
            public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"not a usable PEM key: {exc}") from None
    if not isinstance(public, ed25519.Ed25519PublicKey):
        raise ConfigurationError("anchor keys in PEM must be Ed25519 keys")
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def check(message: bytes, signature: bytes) -> bool:
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    sign = None if private is None else private.sign
    return AnchorKey("ed25519", _key_id(b"eventkeep ed25519 key ", raw), sign, check)


def read_key(path: str | os.PathLike[str] | None = None, env: str = KEY_ENV_VAR) -> AnchorKey:
    """The key in the file at ``path``, or else in the environment variable ``env``."""
    if path is not None:
        try:
            return load_key(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigurationError(f"cannot read the anchor key {path}: {exc.strerror}") from None
    value = os.environ.get(env)
    if not value:
        raise ConfigurationError(f"no anchor key: give a key file, or set ${env}")
    return load_key(value)


def generate_ed25519_key() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair in PEM: (private key, public key)."""
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    private_pem: bytes = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem: bytes = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


# -- digests ----------------------------------------------------------------------------------


def digest_log(rows: Iterable[AnchorRow], start: bytes = LOG_GENESIS) -> tuple[bytes, int]:
    """Fold ``rows`` (in position order) into the log digest from ``start``; returns the digest
    and the number of rows."""
    digest, count = start, 0
    pack, sha256 = _pack, hashlib.sha256
    for row in rows:
        digest = sha256(digest + pack(tuple(row))).digest()
        count += 1
    return digest, count


def digest_heads(heads: Iterable[AnchorHead]) -> tuple[bytes, int]:
    """The digest of the stream heads (in stream id order), and how many there are."""
    hasher, count = hashlib.sha256(_HEADS_TAG), 0
    for head in heads:
        hasher.update(_pack(tuple(head)))
        count += 1
    return hasher.digest(), count


def _authentic(anchor: Anchor, key: AnchorKey) -> None:
    if anchor.algorithm != key.algorithm or anchor.key_id != key.key_id:
        raise AnchorError(
            f"the anchor at position {anchor.position} was signed with {anchor.algorithm} key "
            f"{anchor.key_id}, not with the given {key.algorithm} key {key.key_id}"
        )
    try:
        signature = base64.b64decode(anchor.signature, validate=True)
    except (binascii.Error, ValueError):
        raise AnchorError("malformed anchor: the signature is not base64") from None
    if not key.check(anchor.signed_bytes(), signature):
        raise AnchorError(
            f"the anchor at position {anchor.position} has a bad signature: it was changed "
            "after it was signed, or signed with another key"
        )


def make_anchor(source: AnchorSource, key: AnchorKey, previous: Anchor | None = None) -> Anchor:
    """Sign a new anchor at the source's head position (extending ``previous``, if given,
    which must be authentic under ``key``; the events up to it are not read again)."""
    position = source.head_position()
    start, counted, extends = LOG_GENESIS, 0, None
    if previous is not None:
        _authentic(previous, key)
        if previous.position > position:
            raise AnchorError(
                f"the previous anchor is at position {previous.position}, beyond this store's "
                f"head ({position}): it is not an anchor of this store's history"
            )
        start, counted = bytes.fromhex(previous.log_digest), previous.events
        extends = Extends(
            position=previous.position, events=previous.events, log_digest=previous.log_digest
        )
    digest, count = digest_log(source.rows(previous.position if previous else 0, position), start)
    heads, streams = digest_heads(source.heads(position))
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    unsigned = Anchor(
        position=position,
        events=counted + count,
        streams=streams,
        log_digest=digest.hex(),
        heads_digest=heads.hex(),
        created_at=now.replace("+00:00", "Z"),
        extends=extends,
        algorithm=key.algorithm,
        key_id=key.key_id,
    )
    signature = base64.b64encode(key.sign(unsigned.signed_bytes())).decode()
    return msgspec.structs.replace(unsigned, signature=signature)


def check_anchor(
    source: AnchorSource, anchor: Anchor, key: AnchorKey, trusted: Anchor | None = None
) -> tuple[str, list[str]]:
    """Check that the store still holds exactly the history ``anchor`` states.

    Raises :class:`AnchorError` if the anchor (or ``trusted``) is not authentic under ``key``.
    With ``trusted`` (an earlier anchor of the same history), only the events after it are
    read. Returns what was checked, in words, and the problems found (none: the history up to
    the anchor's position is exactly the anchored one).
    """
    _authentic(anchor, key)
    start, after, counted = LOG_GENESIS, 0, 0
    if trusted is not None:
        _authentic(trusted, key)
        if trusted.position > anchor.position:
            raise AnchorError(
                f"the trusted anchor (position {trusted.position}) is after the anchor to "
                f"check (position {anchor.position}); give an earlier one"
            )
        start, after, counted = (
            bytes.fromhex(trusted.log_digest),
            trusted.position,
            trusted.events,
        )
    what = (
        f"anchor at position {anchor.position} ({_count(anchor.events, 'event')}, "
        f"{_count(anchor.streams, 'stream')}; {anchor.algorithm} key {anchor.key_id}, "
        f"made {anchor.created_at})"
        + (f", from the trusted anchor at position {after}" if trusted is not None else "")
    )
    head = source.head_position()
    if head < anchor.position:
        return what, [
            f"the store's log ends at position {head}, before the anchor's position "
            f"{anchor.position}: events were removed, or the database was truncated or replaced"
        ]
    problems: list[str] = []
    digest, count = digest_log(source.rows(after, anchor.position), start)
    if counted + count != anchor.events:
        problems.append(
            f"the store holds {counted + count} events up to position {anchor.position}; "
            f"the anchor says {anchor.events}: events were deleted or added"
        )
    elif digest.hex() != anchor.log_digest:
        problems.append(
            f"the events up to position {anchor.position} are not the anchored ones: an event "
            "was changed (even with its hash chain recomputed), replaced, or moved"
        )
    heads, streams = digest_heads(source.heads(anchor.position))
    if streams != anchor.streams:
        problems.append(
            f"the store holds {streams} streams at position {anchor.position}; the anchor "
            f"says {anchor.streams}: a stream was deleted or added"
        )
    elif heads.hex() != anchor.heads_digest:
        problems.append(f"the stream heads at position {anchor.position} are not the anchored ones")
    return what, problems
