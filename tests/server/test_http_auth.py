"""Every endpoint refuses a missing, wrong-scope, out-of-prefix or revoked token; rate limits."""

from __future__ import annotations

import json
import time

import pytest
from http_harness import RunningServer

from eventkeep.server.tokens import create_token, revoke_token

EVENT = {"type": "Deposited", "data": {"amount": "1"}}
QUERY = json.dumps([{"types": ["Deposited"]}])

# (method, path, body, scope it needs)
ENDPOINTS = [
    ("GET", "/v1/streams", None, "read"),
    ("GET", "/v1/streams/acc-1", None, "read"),
    ("POST", "/v1/streams/acc-1", {"events": [EVENT]}, "append"),
    ("GET", "/v1/streams/acc-1/live", None, "read"),
    ("GET", "/v1/log", None, "read"),
    ("GET", "/v1/log/live", None, "read"),
    ("POST", "/v1/query", {"items": [{}]}, "read"),
    ("GET", f"/v1/query/live?query={QUERY}", None, "read"),
    ("POST", "/v1/append", {"events": [EVENT]}, "append"),
    ("GET", "/v1/stats", None, "read"),
    ("POST", "/v1/verify", {}, "admin"),
    ("GET", "/v1/projections", None, "read"),
    ("GET", "/v1/projections/p", None, "read"),
    ("POST", "/v1/projections/p/retry", None, "admin"),
    ("POST", "/v1/projections/p/skip", {"position": 1, "reason": "r"}, "admin"),
    ("GET", "/v1/tokens", None, "admin"),
    ("POST", "/v1/tokens", {"name": "x", "scope": "read"}, "admin"),
    ("DELETE", "/v1/tokens/abc", None, "admin"),
    ("GET", "/v1/aggregates", None, "read"),
]
LOWER = {"append": "read", "admin": "append"}


def call(server: RunningServer, token: str | None, method: str, path: str, body: object):  # type: ignore[no-untyped-def]
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    with server.client(None) as http:
        return http.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS)
def test_every_endpoint_refuses_a_request_without_a_token(
    memory_server: RunningServer, method: str, path: str, body: object, scope: str
) -> None:
    r = call(memory_server, None, method, path, body)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert memory_server.store.head_position() == 0


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS)
def test_every_endpoint_refuses_a_revoked_or_unknown_token(
    memory_server: RunningServer, method: str, path: str, body: object, scope: str
) -> None:
    token, record = create_token(memory_server.store, name="gone", scope="admin")
    revoke_token(memory_server.store, record.token_id)
    assert call(memory_server, token, method, path, body).status_code == 401
    assert call(memory_server, token[:-2] + "xx", method, path, body).status_code == 401
    assert memory_server.store.head_position() == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "scope"), [e for e in ENDPOINTS if e[3] != "read"]
)
def test_every_endpoint_refuses_a_token_of_a_lower_scope(
    memory_server: RunningServer, method: str, path: str, body: object, scope: str
) -> None:
    r = call(memory_server, memory_server.tokens[LOWER[scope]], method, path, body)
    assert r.status_code == 403
    assert scope in r.json()["detail"]
    assert memory_server.store.head_position() == 0


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS)
def test_every_endpoint_refuses_a_token_limited_to_other_streams(
    memory_server: RunningServer, method: str, path: str, body: object, scope: str
) -> None:
    token, _ = create_token(memory_server.store, name="other", scope="admin", prefixes=["user-"])
    if scope == "admin":  # admin actions are store-wide: a prefix does not limit them
        return
    assert call(memory_server, token, method, path, body).status_code == 403
    assert memory_server.store.head_position() == 0


def test_a_prefixed_token_reaches_its_own_streams(memory_server: RunningServer) -> None:
    token, _ = create_token(memory_server.store, name="users", scope="append", prefixes=["user-"])
    assert (
        call(memory_server, token, "POST", "/v1/streams/user-1", {"events": [EVENT]}).status_code
        == 201
    )
    assert call(memory_server, token, "GET", "/v1/log?prefix=user-", None).status_code == 200
    assert call(memory_server, token, "GET", "/v1/log", None).status_code == 403


def test_a_rate_limited_token_gets_429_with_retry_after(memory_server: RunningServer) -> None:
    token, _ = create_token(memory_server.store, name="slow", scope="read", rate_limit=2)
    codes = [call(memory_server, token, "GET", "/v1/stats", None) for _ in range(6)]
    assert [r.status_code for r in codes].count(429) >= 3
    limited = next(r for r in codes if r.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    other = call(memory_server, memory_server.tokens["read"], "GET", "/v1/stats", None)
    assert other.status_code == 200


def test_anonymous_read_opens_reads_but_never_writes(sqlite_store) -> None:  # type: ignore[no-untyped-def]
    running = RunningServer(sqlite_store, anonymous_read=True)
    try:
        assert call(running, None, "GET", "/v1/log", None).status_code == 200
        assert call(running, None, "POST", "/v1/streams/a", {"events": [EVENT]}).status_code == 401
        assert call(running, None, "GET", "/v1/tokens", None).status_code == 401
    finally:
        running.stop()


def test_tokens_are_stored_as_digests_only(server: RunningServer) -> None:
    token = server.tokens["admin"]
    with server.store.transaction() as tx:
        rows = tx.execute("SELECT * FROM api_tokens")
    assert rows
    assert token not in repr(rows)
    assert token.rpartition("_")[2] not in repr(rows)


def test_a_token_revoked_through_the_server_is_refused_at_once(
    memory_server: RunningServer,
) -> None:
    token, record = create_token(memory_server.store, name="soon-gone", scope="read")
    assert call(memory_server, token, "GET", "/v1/stats", None).status_code == 200
    admin = memory_server.tokens["admin"]
    assert (
        call(memory_server, admin, "DELETE", f"/v1/tokens/{record.token_id}", None).status_code
        == 200
    )
    assert call(memory_server, token, "GET", "/v1/stats", None).status_code == 401


def test_a_token_revoked_elsewhere_is_refused_within_the_cache_time(sqlite_store) -> None:  # type: ignore[no-untyped-def]
    running = RunningServer(sqlite_store, token_cache_seconds=0.3)
    try:
        token, record = create_token(sqlite_store, name="cli-revoked", scope="read")
        assert call(running, token, "GET", "/v1/stats", None).status_code == 200
        revoke_token(sqlite_store, record.token_id)  # as `eventkeep tokens revoke` does
        time.sleep(0.35)
        assert call(running, token, "GET", "/v1/stats", None).status_code == 401
    finally:
        running.stop()
