"""Crypto-shredding: personal fields encrypted with a key per data subject, and forgetting a
subject by destroying its key.

Each subject gets a random 256-bit AES-GCM key the first time an append holds personal data
of it (stored in that append's own transaction where the backend can: ``keys_in_append``).
Keys live in a :class:`KeyStore`: by default the store's own keys table (memory keeps them in
the store object); any object with the four methods of the protocol can take its place (a KMS,
a vault). ``store.forget(subject)`` destroys the key; the ciphertext stays in the log, so
hashes, ``verify`` and anchors are untouched, and every read shows the field's redacted value
(:mod:`eventkeep.store.personal`).

Keys (and the revealed data of recent events) are cached per store object. The cache is
checked against the key store's *epoch*, a number that changes whenever any process destroys a
key: once per page of events that holds ciphertext (pages without any never look), and at most
once a second by appends that encrypt. A forget in another process therefore takes effect for
this process's next read.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

import msgspec

from eventkeep.errors import ConfigurationError, KeyConflictError, ValidationError
from eventkeep.store.personal import ENVELOPE_PREFIX, REDACTED, holds_personal

__all__ = [
    "ForgetReport",
    "ForgottenSubject",
    "KeyStore",
    "MemoryKeyStore",
    "Shredder",
    "subject_needle",
    "subjects_in",
]

APPEND_REFRESH = 1.0
"""Seconds between an appending store's looks at the epoch (reads look on every page that
holds ciphertext). Within that window an append may still encrypt with a key another
process just destroyed: its values then read as redacted, as if appended just before the
forget."""
REVEALED_CACHE = 4096
"""Events' revealed data kept per store object (dropped with the keys when a forget is
seen; emptied when full)."""
_AAD = b"eventkeep:personal:"
_NONCE = 12
_STRING = rb'([^"\\]*(?:\\.[^"\\]*)*)'  # the inside of a JSON string (unrolled: fast)
_ENVELOPE = re.compile(
    rb'\{"\$eventkeep:personal":\["' + _STRING + rb'","([A-Za-z0-9+/=]*)"'
    rb'(?:,"' + _STRING + rb'")?\]\}'
)
_SUBJECTS = re.compile(rb'\{"\$eventkeep:personal":\["' + _STRING + rb'"')
_REDACTED_JSON = msgspec.json.encode(REDACTED)
_encode = msgspec.json.Encoder().encode
_decode_str = msgspec.json.Decoder(str).decode


@runtime_checkable
class KeyStore(Protocol):
    """Where the per-subject keys live. Implement it to keep keys in a KMS or a vault.

    Keys are opaque 32-byte values. Every method may be called from several threads.
    """

    def keys(self, subjects: Collection[str]) -> dict[str, bytes]:
        """The keys of those of ``subjects`` that have one (forgotten ones have none)."""
        ...

    def create_key(self, subject: str, key: bytes) -> bytes:
        """Store ``key`` for ``subject`` unless it has one already; return the key it has
        now (another process may have won the race: its key is the one to use)."""
        ...

    def destroy_key(self, subject: str) -> bool:
        """Destroy the subject's key for good; True if it had one. Changes the epoch."""
        ...

    def epoch(self) -> int:
        """A number that changes whenever a key is destroyed, by any process."""
        ...


class MemoryKeyStore:
    """Keys in a dict: the memory store's key store, and an example of the protocol."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        self._epoch = 0

    def keys(self, subjects: Collection[str]) -> dict[str, bytes]:
        found = self._keys
        return {s: found[s] for s in subjects if s in found}

    def create_key(self, subject: str, key: bytes) -> bytes:
        with self._lock:
            return self._keys.setdefault(subject, key)

    def destroy_key(self, subject: str) -> bool:
        with self._lock:
            had = self._keys.pop(subject, None) is not None
            self._epoch += 1
            return had

    def epoch(self) -> int:
        return self._epoch


class ForgottenSubject(NamedTuple):
    """One entry of the forget log: who forgot which subject, when and why (never the data)."""

    seq: int
    """1, 2, 3...: the order of forgets in this store."""
    subject: str
    forgotten_at: datetime
    by: str
    reason: str
    had_key: bool
    """False when the store held no key for the subject (nothing of it was encrypted, or it
    was forgotten before)."""


class ForgetReport(NamedTuple):
    """What ``store.forget`` did."""

    subject: str
    had_key: bool
    """True: a key was destroyed now. False: there was none (see ``earlier``)."""
    earlier: tuple[ForgottenSubject, ...]
    """Earlier forgets of the same subject, oldest first."""
    snapshots_deleted: int
    """Snapshots of streams holding the subject's ciphertext, deleted (they may hold plaintext)."""
    entry: ForgottenSubject
    """The forget log entry written for this call."""


def subjects_in(data: bytes | str) -> set[str]:
    """The data subjects whose encrypted values stored data ``data`` holds."""
    raw = data.encode() if isinstance(data, str) else data
    if not holds_personal(raw):
        return set()
    return {_subject_of(group) for group in _SUBJECTS.findall(raw)}


def subject_needle(subject: str) -> bytes:
    """How every stored encrypted value of ``subject`` starts (for finding its streams)."""
    return ENVELOPE_PREFIX + _encode(subject) + b","


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:  # pragma: no cover - the venv has it
        raise ConfigurationError(
            "personal fields are encrypted with AES-GCM from the cryptography package: "
            "pip install 'eventkeep[crypto]'"
        ) from None
    return AESGCM


def _subject_of(group: bytes) -> str:
    if b"\\" in group:
        return _decode_str(b'"' + group + b'"')
    return group.decode()


class _Key(NamedTuple):
    cipher: Any  # an AESGCM
    aad: bytes


class Shredder:
    """Encrypts personal values for appends and reveals them on reads, with a key cache.

    ``in_transaction``: true while the calling thread has a store transaction open; keys seen
    inside one are not cached (the transaction may roll back a key it created).

    The cache maps a subject id as it appears in stored JSON (its escaped bytes) to its key,
    so that a read finds the key without decoding anything.
    """

    def __init__(self, key_store: KeyStore, in_transaction: Callable[[], bool]) -> None:
        if not isinstance(key_store, KeyStore):
            raise ConfigurationError(
                f"key_store must implement eventkeep.KeyStore (keys, create_key, destroy_key, "
                f"epoch), got {key_store!r:.80}"
            )
        self.key_store = key_store
        self._in_transaction = in_transaction
        self._keys: dict[bytes, _Key] = {}
        self._revealed: dict[bytes | str, bytes] = {}
        self._epoch: int | None = None
        self._append_refresh_at = 0.0
        self._local = threading.local()
        self.keys_in_append = False
        """True when the store writes new keys in the append's own transaction (its own keys
        table); else new keys go through ``key_store.create_key`` before the append."""

    # -- the cache ----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Drop every cached key if a key was destroyed since the last look (any process)."""
        epoch = self.key_store.epoch()
        if epoch != self._epoch:
            self._keys = {}
            self._revealed = {}
            self._epoch = epoch

    def drop(self, subject: str) -> None:
        """Forget ``subject`` in this cache (its key was destroyed through this store)."""
        self._keys.pop(_encode(subject)[1:-1], None)
        self._revealed = {}

    def _key(self, subject: str, key: bytes, cache: bool = True) -> _Key:
        made = _Key(_crypto()(key), _AAD + subject.encode())
        if cache and not self._in_transaction():
            self._keys[_encode(subject)[1:-1]] = made
        return made

    # -- appends ------------------------------------------------------------------------------

    def begin_append(self) -> None:
        """An append call starts preparing its events: the keys it makes are shared by all of
        them (one subject, one key, however many events of the call name it)."""
        self._local.made = {}

    def _key_for_append(self, subject: str, new_keys: dict[str, bytes]) -> _Key:
        now = time.monotonic()
        if now >= self._append_refresh_at:
            self.refresh()
            self._append_refresh_at = now + APPEND_REFRESH
        found = self._keys.get(_encode(subject)[1:-1])
        if found is not None:
            return found
        made: dict[str, bytes] | None = getattr(self._local, "made", None)
        if made is None:
            made = self._local.made = {}
        key = made.get(subject)
        if key is not None:
            new_keys[subject] = key
            return self._key(subject, key, cache=False)
        store = self.key_store
        if not self.keys_in_append:  # one call: it returns the key stored already, if any
            return self._key(subject, store.create_key(subject, _crypto().generate_key(256)))
        key = store.keys((subject,)).get(subject)
        if key is not None:
            return self._key(subject, key)
        key = _crypto().generate_key(bit_length=256)  # stored by the append, cached after it
        new_keys[subject] = made[subject] = key
        return self._key(subject, key, cache=False)

    def adopt(self, keys: Iterable[tuple[str, bytes]]) -> None:
        """Cache keys an append has just stored (outside a transaction only)."""
        if not self._in_transaction():
            for subject, key in keys:
                self._key(subject, key)

    def reseal(self, data: bytes, lost: dict[str, bytes]) -> bytes:
        """``data`` with the values sealed with the ``lost`` keys (subject: key another
        append's key replaced) sealed again with the stored keys, same nonces."""
        winners = self.key_store.keys(list(lost))

        def again(match: re.Match[bytes]) -> bytes:
            subject = _subject_of(match.group(1))
            if subject not in lost:
                return match.group(0)
            winner = winners.get(subject)
            if winner is None:  # forgotten meanwhile: nothing can be sealed for it now
                raise KeyConflictError([subject])
            aad = _AAD + subject.encode()
            sealed = binascii.a2b_base64(match.group(2))
            nonce = sealed[:_NONCE]
            plain = _crypto()(lost[subject]).decrypt(nonce, sealed[_NONCE:], aad)
            text = binascii.b2a_base64(
                nonce + _crypto()(winner).encrypt(nonce, plain, aad), newline=False
            )
            whole = match.group(0)
            return (
                whole[: match.start(2) - match.start()]
                + text
                + whole[match.end(2) - match.start() :]
            )

        return _ENVELOPE.sub(again, data)

    def encrypt(
        self,
        subject: Any,
        plaintext: bytes,
        redacted: bytes | None,
        seed: bytes,
        new_keys: dict[str, bytes],
    ) -> msgspec.Raw:
        """The stored form of one personal value (its JSON text ``plaintext``).

        The nonce is derived from ``seed`` (the event id and the field's name): unique per
        stored value, as event ids are unique, and the same when an append is retried, so
        that the retry stores (and is recognised by) the same bytes.
        """
        if isinstance(subject, bool) or not isinstance(subject, str | int):
            subject = str(subject) if subject is not None else None
        if subject is None or subject == "":
            raise ValidationError("a personal field's subject field holds no subject id")
        subject = str(subject)
        key = self._key_for_append(subject, new_keys)
        nonce = hashlib.sha256(seed).digest()[:_NONCE]
        sealed = binascii.b2a_base64(
            nonce + key.cipher.encrypt(nonce, plaintext, key.aad), newline=False
        )
        out = ENVELOPE_PREFIX + _encode(subject) + b',"' + sealed + b'"'
        if redacted is not None:
            out += b"," + _encode(redacted.decode())
        return msgspec.Raw(out + b"]}")

    # -- reads --------------------------------------------------------------------------------

    def page(self, raws: list[bytes | str]) -> None:
        """A page of events holding ciphertext is about to be handed out: check the epoch
        (a forget anywhere drops the cache). The keys its subjects miss are fetched together,
        on the first miss."""
        self.refresh()
        local = self._local
        local.page = raws
        local.absent = set()

    def _fetch(self, wanted: bytes) -> _Key | None:
        """The key of subject ``wanted`` (escaped JSON bytes) on a cache miss, fetched with
        those of the rest of this thread's current page."""
        local = self._local
        absent: set[bytes] | None = getattr(local, "absent", None)
        if absent is not None and wanted in absent:
            return None
        page: list[bytes | str] | None = getattr(local, "page", None)
        subjects = {wanted}
        if page:
            local.page = None
            for raw in page:
                data = raw.encode() if isinstance(raw, str) else raw
                subjects.update(_SUBJECTS.findall(data))
            subjects.difference_update(self._keys)
            subjects.add(wanted)
        names = {_subject_of(s): s for s in subjects}
        found = self.key_store.keys(list(names))
        cache = not self._in_transaction()
        result = None
        for name, raw_name in names.items():
            key = found.get(name)
            if key is None:
                if absent is not None:
                    absent.add(raw_name)
                continue
            made = self._key(name, key, cache)
            if raw_name == wanted:
                result = made
        return result

    def reveal(self, raw: bytes | str) -> bytes:
        """``raw`` with each encrypted value replaced by its plaintext, or by its redacted
        value when the subject's key is gone."""
        revealed = self._revealed
        out = revealed.get(raw)
        if out is None:
            data = raw.encode() if isinstance(raw, str) else raw
            out = _ENVELOPE.sub(self._open, data)
            if len(revealed) >= REVEALED_CACHE:
                revealed = self._revealed = {}
            # Safe to keep: a value decrypted now stays readable until a forget, which drops
            # the cache; a value redacted now (no key) stays redacted.
            revealed[raw] = out
        return out

    def _open(self, match: re.Match[bytes]) -> bytes:
        subject, sealed_text, redacted = match.groups()
        key = self._keys.get(subject) or self._fetch(subject)
        if key is not None:
            sealed = binascii.a2b_base64(sealed_text)
            try:
                plain = bytes(key.cipher.decrypt(sealed[:_NONCE], sealed[_NONCE:], key.aad))
            except Exception:  # InvalidTag: sealed with an earlier key of a forgotten subject
                plain = None
            if plain is not None:
                return plain
        if redacted is None:
            return _REDACTED_JSON
        return _subject_of(redacted).encode()
