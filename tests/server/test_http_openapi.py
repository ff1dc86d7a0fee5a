"""schemathesis against /openapi.json: generated requests to every non-streaming operation, with
an admin token; no 5xx, and every response (status, content type, headers, body) matches the
schema. Live (SSE) operations never end, so they are tested in test_http_live.py instead.

Examples: MAX_EXAMPLES per operation (hypothesis may stop sooner when an operation's inputs
are few); 19 operations here, so up to 19 * MAX_EXAMPLES = 760 requests per run.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from http_harness import RunningServer
from hypothesis import HealthCheck, settings
from schemathesis import checks

import eventkeep
from eventkeep.server.openapi import openapi_document

MAX_EXAMPLES = 40

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
"""What "true" means here: no 5xx, and status, content type, headers and body as declared.
schemathesis's stricter opinions (that every schema-valid body is accepted, e.g. a skip of an
event the projection is not failed at) are not claims this schema makes."""

schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path_regex=r"/live$")


@pytest.fixture(scope="module")
def running() -> Iterator[RunningServer]:
    store = eventkeep.open_store("memory://")
    server = RunningServer(store)
    with server.client("admin") as http:  # something to read
        http.post("/v1/streams/acc-1", json={"events": [{"type": "Opened", "data": {}}]})
    yield server
    server.stop()
    store.close()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_response_matches_the_openapi_schema(case, running: RunningServer) -> None:  # type: ignore[no-untyped-def]
    case.call_and_validate(
        base_url=running.url,
        headers={"Authorization": f"Bearer {running.tokens['admin']}"},
        checks=CHECKS,
    )


def test_the_served_openapi_document_is_the_one_tested() -> None:
    store = eventkeep.open_store("memory://")
    server = RunningServer(store)
    try:
        served = httpx.get(f"{server.url}/openapi.json").json()
    finally:
        server.stop()
    assert served == openapi_document()
    assert {"/v1/streams/{stream_id}", "/v1/log/live", "/v1/query"} <= set(served["paths"])
