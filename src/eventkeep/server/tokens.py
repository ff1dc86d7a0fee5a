"""API tokens of the HTTP server: scopes, stream prefixes, rate limits; kept hashed in the store.

A token is ``ekt_<id>_<secret>``; the store keeps its id, name, scopes, prefixes and the SHA-256
digest of the whole token, never the token itself (it is shown once, when created).

- Scopes: ``read`` (reads, queries, live), ``append`` (also appends), ``admin`` (also
  projections' operator actions, verify and tokens). Each scope includes the ones before it.
- Prefixes: when given, the token reaches only streams whose id starts with one of them (and
  the log only through a ``prefix`` within them); none means every stream.
- Rate limit: requests per second for this token (a token bucket in each server process).

SQL backends keep tokens in the ``api_tokens`` table (SQLite migration 10, PostgreSQL 11); the
memory store keeps them in the store object. Plain functions over an ``EventStore``, so the CLI
needs nothing of the server's dependencies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable
from typing import NamedTuple

import msgspec

from eventkeep.errors import NotFoundError, ValidationError
from eventkeep.store.base import EventStore
from eventkeep.store.validation import check_text

__all__ = [
    "SCOPES",
    "ApiToken",
    "authenticate",
    "create_token",
    "list_tokens",
    "revoke_token",
]

SCOPES = ("read", "append", "admin")
"""From least to most: each scope allows everything the ones before it allow."""

_PREFIX = "ekt_"
_MEMORY_ATTRIBUTE = "_eventkeep_api_tokens"
_memory_lock = threading.Lock()


class ApiToken(NamedTuple):
    """A stored token, without its secret."""

    token_id: str
    name: str
    scope: str
    prefixes: tuple[str, ...]
    rate_limit: float | None
    created_at: int  # microseconds since the epoch
    revoked_at: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, scope: str) -> bool:
        """Whether this token's scope includes ``scope``."""
        return SCOPES.index(self.scope) >= SCOPES.index(scope)

    def reaches(self, stream_id: str) -> bool:
        """Whether this token may touch ``stream_id`` (its prefixes; none: every stream)."""
        return not self.prefixes or any(stream_id.startswith(p) for p in self.prefixes)

    def to_json(self) -> dict[str, object]:
        return {
            "token_id": self.token_id,
            "name": self.name,
            "scope": self.scope,
            "prefixes": list(self.prefixes),
            "rate_limit": self.rate_limit,
            "created_at": self.created_at,
            "revoked": self.revoked,
        }


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now_us() -> int:
    return time.time_ns() // 1000


def _check(scope: str, prefixes: Iterable[str], rate_limit: float | None) -> tuple[str, ...]:
    if scope not in SCOPES:
        raise ValidationError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if isinstance(prefixes, str):
        raise ValidationError("prefixes must be a list of stream id prefixes, not one string")
    checked = tuple(check_text(p, what="stream prefix") for p in prefixes)
    if any(not p for p in checked):
        raise ValidationError("a stream prefix cannot be empty (give none for every stream)")
    if rate_limit is not None and (
        isinstance(rate_limit, bool)
        or not isinstance(rate_limit, int | float)
        or not 0 < rate_limit < 1e9
    ):
        raise ValidationError(
            f"rate_limit must be a number of requests per second > 0, got {rate_limit!r}"
        )
    return checked


def create_token(
    store: EventStore,
    *,
    name: str,
    scope: str,
    prefixes: Iterable[str] = (),
    rate_limit: float | None = None,
) -> tuple[str, ApiToken]:
    """A new token: returns the token string (shown once; only its digest is kept) and its
    record."""
    name = check_text(name, what="token name")
    checked = _check(scope, prefixes, rate_limit)
    token_id = secrets.token_hex(6)
    token = f"{_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    record = ApiToken(token_id, name, scope, checked, rate_limit, _now_us())
    if _memory(store) is not None:
        with _memory_lock:
            _memory_tokens(store)[token_id] = (record, _digest(token))
        return token, record
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO api_tokens (token_id, name, digest, scopes, prefixes, rate_limit, "
            "created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                token_id,
                name,
                _digest(token),
                msgspec.json.encode([scope]).decode(),
                msgspec.json.encode(list(checked)).decode(),
                rate_limit,
                record.created_at,
            ),
        )
    return token, record


def list_tokens(store: EventStore) -> list[ApiToken]:
    """Every token (revoked ones too), oldest first."""
    if _memory(store) is not None:
        with _memory_lock:
            records = [record for record, _ in _memory_tokens(store).values()]
        return sorted(records, key=lambda r: (r.created_at, r.token_id))
    with store.transaction() as tx:
        rows = tx.execute(
            "SELECT token_id, name, scopes, prefixes, rate_limit, created_at, revoked_at "
            "FROM api_tokens ORDER BY created_at, token_id"
        )
    return [_from_row(row) for row in rows]


def revoke_token(store: EventStore, token_id: str) -> ApiToken:
    """Revoke a token by its id (or the token itself): every later request with it is refused.
    Revoking a revoked token changes nothing."""
    token_id = _token_id(check_text(token_id, what="token id"))
    if _memory(store) is not None:
        with _memory_lock:
            tokens = _memory_tokens(store)
            if token_id not in tokens:
                raise NotFoundError(f"no API token with id {token_id!r}")
            record, digest = tokens[token_id]
            if record.revoked_at is None:
                record = record._replace(revoked_at=_now_us())
                tokens[token_id] = (record, digest)
            return record
    with store.transaction() as tx:
        tx.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
            (_now_us(), token_id),
        )
        rows = tx.execute(
            "SELECT token_id, name, scopes, prefixes, rate_limit, created_at, revoked_at "
            "FROM api_tokens WHERE token_id = ?",
            (token_id,),
        )
    if not rows:
        raise NotFoundError(f"no API token with id {token_id!r}")
    return _from_row(rows[0])


def authenticate(store: EventStore, token: str) -> ApiToken | None:
    """The record of a valid, unrevoked ``token``; None for anything else."""
    if not token.startswith(_PREFIX) or len(token) > 200:
        return None
    token_id = _token_id(token)
    digest = _digest(token)
    if _memory(store) is not None:
        with _memory_lock:
            found = _memory_tokens(store).get(token_id)
        if found is None:
            return None
        record, stored = found
    else:
        with store.transaction() as tx:
            rows = tx.execute(
                "SELECT token_id, name, scopes, prefixes, rate_limit, created_at, revoked_at, "
                "digest FROM api_tokens WHERE token_id = ?",
                (token_id,),
            )
        if not rows:
            return None
        record, stored = _from_row(rows[0][:7]), str(rows[0][7])
    if not hmac.compare_digest(stored, digest) or record.revoked:
        return None
    return record


# -- storage ------------------------------------------------------------------------------------


def _token_id(value: str) -> str:
    if value.startswith(_PREFIX):
        return value[len(_PREFIX) :].partition("_")[0]
    return value


def _from_row(row: tuple[object, ...]) -> ApiToken:
    token_id, name, scopes, prefixes, rate_limit, created_at, revoked_at = row
    scope_list = msgspec.json.decode(str(scopes), type=list[str])
    return ApiToken(
        str(token_id),
        str(name),
        scope_list[0] if scope_list else "read",
        tuple(msgspec.json.decode(str(prefixes), type=list[str])),
        None if rate_limit is None else float(rate_limit),  # type: ignore[arg-type]
        int(created_at),  # type: ignore[call-overload]
        None if revoked_at is None else int(revoked_at),  # type: ignore[call-overload]
    )


def _memory(store: EventStore) -> dict[str, tuple[ApiToken, str]] | None:
    from eventkeep.backends.memory import MemoryStore

    return _memory_tokens(store) if isinstance(store, MemoryStore) else None


def _memory_tokens(store: EventStore) -> dict[str, tuple[ApiToken, str]]:
    tokens: dict[str, tuple[ApiToken, str]] | None = getattr(store, _MEMORY_ATTRIBUTE, None)
    if tokens is None:
        tokens = {}
        setattr(store, _MEMORY_ATTRIBUTE, tokens)
    return tokens
