"""Who may do what: bearer tokens with scopes and stream prefixes, per-token rate limits."""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from eventkeep.aio import AsyncEventStore
from eventkeep.server.problems import HTTPProblem
from eventkeep.server.tokens import ApiToken, authenticate

__all__ = ["ANONYMOUS", "Guard", "RateLimiter"]

ANONYMOUS = ApiToken("anonymous", "anonymous (read-only on loopback)", "read", (), None, 0)
"""Who a request without a token is, when the server opens read-only access on loopback."""


class RateLimiter:
    """A token bucket per API token: ``rate`` requests per second, bursts of ``rate`` (at least
    one); in this process only (each server counts its own)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # token id -> (tokens, last time)

    def take(self, token_id: str, rate: float) -> float:
        """0 when a request may go ahead now, else the seconds to wait."""
        now = time.monotonic()
        burst = max(1.0, rate)
        tokens, last = self._buckets.get(token_id, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._buckets[token_id] = (tokens - 1.0, now)
            return 0.0
        self._buckets[token_id] = (tokens, now)
        return (1.0 - tokens) / rate


class Guard:
    """Checks a request's token against the scope and streams it needs."""

    def __init__(
        self, store: AsyncEventStore, *, anonymous_read: bool, cache_seconds: float = 1.0
    ) -> None:
        self.store = store
        self.anonymous_read = anonymous_read
        self.limiter = RateLimiter()
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ApiToken]] = {}  # token -> (valid until, record)

    def forget(self, token_id: str) -> None:
        """Drop a token from the cache at once (it was revoked through this server)."""
        for key, (_, record) in list(self._cache.items()):
            if record.token_id == token_id:
                del self._cache[key]

    async def _authenticate(self, token: str) -> ApiToken | None:
        """The token's record: from the store, or from the cache for ``cache_seconds`` after
        the store last said it was valid (so a revocation made elsewhere takes up to that long
        to reach this server; one made through it, none)."""
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await run_in_threadpool(authenticate, self.store.sync, token)
        if found is None:
            self._cache.pop(token, None)
        elif self.cache_seconds > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now + self.cache_seconds, found)
        return found

    async def token(self, request: Request) -> ApiToken | None:
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise HTTPProblem(
                401,
                "the Authorization header must be 'Bearer <token>'",
                headers={"WWW-Authenticate": 'Bearer realm="eventkeep"'},
            )
        found = await self._authenticate(value.strip())
        if found is None:
            raise HTTPProblem(
                401,
                "the token is not valid (unknown, mistyped or revoked)",
                headers={"WWW-Authenticate": 'Bearer realm="eventkeep", error="invalid_token"'},
            )
        return found

    async def still_valid(self, request: Request) -> bool:
        """Whether the request's token (if it had one) is still valid: live subscriptions ask
        at each heartbeat, and end once it was revoked."""
        try:
            await self.token(request)
        except HTTPProblem:
            return False
        return True

    async def require(
        self,
        request: Request,
        scope: str,
        *,
        streams: Sequence[str] = (),
        prefix: str | None = None,
        every_stream: bool = False,
    ) -> ApiToken:
        """The request's token, if it has ``scope`` and reaches ``streams`` (and the log
        under ``prefix``, or every stream); else a 401, 403 or 429 problem."""
        token = await self.token(request)
        if token is None:
            if scope == "read" and self.anonymous_read:
                return ANONYMOUS
            raise HTTPProblem(
                401,
                f"this request needs a token with the {scope!r} scope "
                "(Authorization: Bearer <token>; see eventkeep tokens create)",
                headers={"WWW-Authenticate": 'Bearer realm="eventkeep"'},
            )
        if not token.allows(scope):
            raise HTTPProblem(
                403, f"token {token.token_id!r} has the {token.scope!r} scope; this needs {scope!r}"
            )
        for stream_id in streams:
            if not token.reaches(stream_id):
                raise HTTPProblem(
                    403, f"token {token.token_id!r} does not reach stream {stream_id!r}"
                )
        if (
            token.prefixes
            and (every_stream or prefix is not None)
            and (prefix is None or not token.reaches(prefix))
        ):
            raise HTTPProblem(
                403,
                f"token {token.token_id!r} reaches only streams starting with "
                f"{', '.join(map(repr, token.prefixes))}: give one of them as prefix",
            )
        if token.rate_limit is not None:
            wait = self.limiter.take(token.token_id, token.rate_limit)
            if wait > 0:
                raise HTTPProblem(
                    429,
                    f"token {token.token_id!r} is limited to {token.rate_limit:g} requests "
                    "per second",
                    headers={"Retry-After": str(max(1, round(wait + 0.5)))},
                )
        return token
