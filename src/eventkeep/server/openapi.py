"""The OpenAPI 3.1 description of the API, written by hand (tests check every response of the
API against it, schemathesis included)."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_PROBLEM = {
    "description": "a problem",
    "content": {"application/problem+json": {"schema": _ref("Problem")}},
}

_ERRORS = {
    "400": _PROBLEM,
    "401": _PROBLEM,
    "403": _PROBLEM,
    "404": _PROBLEM,
    "409": _PROBLEM,
    "413": _PROBLEM,
    "429": _PROBLEM,
    "503": _PROBLEM,
}

_SSE = {
    "description": "Server-Sent Events: `event: event` frames (id = position, data = Event), "
    "heartbeat comments, and a final `event: dropped` when the client fell too far behind",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


def _q(
    name: str,
    schema: dict[str, Any],
    description: str,
    *,
    required: bool = False,
    explode: bool | None = None,
) -> dict[str, Any]:
    param: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }
    if explode is not None:
        param["explode"] = explode
    return param


_STREAM_ID = {
    "name": "stream_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_INT = {"type": "integer", "minimum": 0}
_LIMIT = _q(
    "limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many (default 100)"
)
_AFTER = _q("after", _INT, "events after this global position")
_PREFIX = _q("prefix", {"type": "string"}, "only streams whose id starts with this")
_TYPES = _q(
    "type", {"type": "array", "items": {"type": "string"}}, "only these event types", explode=True
)
_LAST_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "resume after this position",
}
_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    params: list[Any] | None = None,
    body: dict[str, Any] | None = None,
    body_required: bool = True,
    public: bool = False,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {**responses, **_ERRORS}}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": body}},
        }
    op["security"] = [] if public else _SECURITY
    return op


_NULLABLE_INT = {"type": ["integer", "null"]}

SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "error": {"type": "string", "description": "eventkeep's error class"},
            "retryable": {"type": "boolean"},
        },
    },
    "NewEvent": {
        "type": "object",
        "required": ["type", "data"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string"},
            "data": {"type": "object"},
            "metadata": {"type": ["object", "null"]},
            "event_id": {"type": ["string", "null"], "format": "uuid"},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
            "schema_version": {"type": "integer"},
        },
    },
    "Event": {
        "type": "object",
        "required": [
            "position",
            "stream_id",
            "version",
            "type",
            "schema_version",
            "event_id",
            "recorded_at",
            "data",
            "metadata",
            "tags",
        ],
        "properties": {
            "position": {"type": "integer"},
            "stream_id": {"type": "string"},
            "version": {"type": "integer"},
            "type": {"type": "string"},
            "schema_version": {"type": "integer"},
            "event_id": {"type": "string"},
            "recorded_at": {"type": "string"},
            "data": {"type": "object"},
            "metadata": {"type": "object"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    },
    "AppendResult": {
        "type": "object",
        "required": ["stream_id", "versions", "positions", "version", "position", "replayed"],
        "properties": {
            "stream_id": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "integer"}},
            "positions": {"type": "array", "items": {"type": "integer"}},
            "version": {"type": "integer"},
            "position": {"type": "integer"},
            "replayed": {"type": "boolean", "description": "a re-send: the original result"},
        },
    },
    "QueryItem": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "types": {"type": "array", "items": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Events": {
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {"type": "array", "items": _ref("Event")},
            "next_after": _NULLABLE_INT,
            "head": {"type": "integer"},
        },
    },
    "Token": {
        "type": "object",
        "required": [
            "token_id",
            "name",
            "scope",
            "prefixes",
            "rate_limit",
            "created_at",
            "revoked",
        ],
        "properties": {
            "token_id": {"type": "string"},
            "name": {"type": "string"},
            "scope": {"type": "string", "enum": ["read", "append", "admin"]},
            "prefixes": {"type": "array", "items": {"type": "string"}},
            "rate_limit": {"type": ["number", "null"]},
            "created_at": {"type": "integer"},
            "revoked": {"type": "boolean"},
            "token": {"type": "string"},
        },
    },
    "Projection": {
        "type": "object",
        "required": [
            "name",
            "state",
            "position",
            "head",
            "lag_events",
            "lag_seconds",
            "failing_position",
            "parked",
            "skips",
        ],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "integer"},
            "state": {"type": "string"},
            "position": {"type": "integer"},
            "head": {"type": "integer"},
            "lag_events": {"type": "integer"},
            "lag_seconds": {"type": "number"},
            "owner": {"type": ["string", "null"]},
            "error": {"type": ["string", "null"]},
            "last_error": {"type": ["string", "null"]},
            "failing_position": _NULLABLE_INT,
            "retries": {"type": "integer"},
            "rebuild_progress": {"type": ["number", "null"]},
            "skips": {"type": "array", "items": {"type": "object"}},
            "parked": {"type": "array", "items": {"type": "object"}},
        },
    },
}

_EXPECTED = {
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "enum": ["any", "no_stream", "stream_exists"]},
        {"type": "null"},
    ]
}


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/v1/streams": {
            "get": _op(
                "List streams",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["streams"],
                            "properties": {
                                "streams": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["stream_id", "version", "last_position"],
                                    },
                                }
                            },
                        },
                        "streams, sorted by id",
                    )
                },
                params=[_PREFIX, _LIMIT],
            )
        },
        "/v1/streams/{stream_id}": {
            "get": _op(
                "Read a stream",
                {
                    "200": {
                        **_json(
                            {
                                "type": "object",
                                "required": ["stream_id", "version", "events"],
                                "properties": {
                                    "stream_id": {"type": "string"},
                                    "version": {"type": "integer"},
                                    "events": {"type": "array", "items": _ref("Event")},
                                },
                            },
                            "the events; ETag is the stream's version",
                        ),
                        "headers": {"ETag": {"schema": {"type": "string"}}},
                    },
                    "304": {"description": "not modified (If-None-Match)"},
                },
                params=[
                    _STREAM_ID,
                    _q("from", {"type": "integer", "minimum": 1}, "first version"),
                    _q("to", _INT, "last version"),
                    _LIMIT,
                    _q("backwards", {"type": "boolean"}, "from the end"),
                ],
            ),
            "post": _op(
                "Append to a stream",
                {
                    "201": _json(_ref("AppendResult"), "appended"),
                    "200": _json(_ref("AppendResult"), "a re-send with the same event ids"),
                },
                params=[
                    _STREAM_ID,
                    {
                        "name": "If-Match",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "the expected version as an ETag",
                    },
                ],
                body={
                    "type": "object",
                    "required": ["events"],
                    "additionalProperties": False,
                    "properties": {
                        "events": {"type": "array", "items": _ref("NewEvent"), "minItems": 1},
                        "expected_version": _EXPECTED,
                    },
                },
            ),
        },
        "/v1/streams/{stream_id}/live": {
            "get": _op(
                "Follow a stream live (SSE)", {"200": _SSE}, params=[_STREAM_ID, _AFTER, _LAST_ID]
            )
        },
        "/v1/log": {
            "get": _op(
                "Read the global log",
                {"200": _json(_ref("Events"), "a page")},
                params=[_AFTER, _LIMIT, _TYPES, _PREFIX],
            )
        },
        "/v1/log/live": {
            "get": _op(
                "Follow the global log live (SSE)",
                {"200": _SSE},
                params=[_AFTER, _TYPES, _PREFIX, _LAST_ID],
            )
        },
        "/v1/query": {
            "post": _op(
                "Read the events matching a DCB query",
                {"200": _json(_ref("Events"), "matching events and head")},
                body={
                    "type": "object",
                    "required": ["items"],
                    "additionalProperties": False,
                    "properties": {
                        "items": {"type": "array", "items": _ref("QueryItem"), "minItems": 1},
                        "after": {"type": ["integer", "null"], "minimum": 0},
                        "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000},
                    },
                },
            )
        },
        "/v1/query/live": {
            "get": _op(
                "Follow a DCB query live (SSE)",
                {"200": _SSE},
                params=[
                    _q("query", {"type": "string"}, "a JSON list of query items", required=True),
                    _AFTER,
                    _LAST_ID,
                ],
            )
        },
        "/v1/append": {
            "post": _op(
                "Append events under a DCB condition",
                {
                    "201": _json(_ref("AppendResult"), "appended"),
                    "200": _json(_ref("AppendResult"), "a re-send with the same event ids"),
                },
                body={
                    "type": "object",
                    "required": ["events"],
                    "additionalProperties": False,
                    "properties": {
                        "events": {"type": "array", "items": _ref("NewEvent"), "minItems": 1},
                        "condition": {
                            "type": ["object", "null"],
                            "required": ["items"],
                            "properties": {
                                "items": {
                                    "type": "array",
                                    "items": _ref("QueryItem"),
                                    "minItems": 1,
                                },
                                "after": _NULLABLE_INT,
                            },
                        },
                    },
                },
            )
        },
        "/v1/stats": {
            "get": _op(
                "Store statistics",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["events", "streams", "head_position", "types"],
                        },
                        "counts",
                    )
                },
            )
        },
        "/v1/verify": {
            "post": _op(
                "Verify the hash chains (admin)",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["ok", "events_checked", "broken", "problems"],
                        },
                        "the report",
                    )
                },
                body={"type": "object", "properties": {"deep": {"type": "boolean"}}},
                body_required=False,
            )
        },
        "/v1/projections": {
            "get": _op(
                "Projections' status",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["projections"],
                            "properties": {
                                "projections": {"type": "array", "items": _ref("Projection")}
                            },
                        },
                        "all",
                    )
                },
            )
        },
        "/v1/projections/{name}": {
            "get": _op(
                "One projection's status",
                {"200": _json(_ref("Projection"), "its status")},
                params=[_NAME],
            )
        },
        "/v1/projections/{name}/retry": {
            "post": _op(
                "Retry a failed projection now (admin)",
                {"202": _json({"type": "object"}, "retry requested")},
                params=[_NAME],
            )
        },
        "/v1/projections/{name}/skip": {
            "post": _op(
                "Skip the failing event (admin)",
                {"200": _json({"type": "object"}, "skipped")},
                params=[_NAME],
                body={
                    "type": "object",
                    "required": ["position", "reason"],
                    "additionalProperties": False,
                    "properties": {"position": {"type": "integer"}, "reason": {"type": "string"}},
                },
            )
        },
        "/v1/tokens": {
            "get": _op(
                "List API tokens (admin)",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["tokens"],
                            "properties": {"tokens": {"type": "array", "items": _ref("Token")}},
                        },
                        "every token, revoked ones too",
                    )
                },
            ),
            "post": _op(
                "Create an API token (admin)",
                {"201": _json(_ref("Token"), "the token, shown once")},
                body={
                    "type": "object",
                    "required": ["name", "scope"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "scope": {"type": "string", "enum": ["read", "append", "admin"]},
                        "prefixes": {"type": "array", "items": {"type": "string"}},
                        "rate_limit": {"type": ["number", "null"]},
                    },
                },
            ),
        },
        "/v1/tokens/{token_id}": {
            "delete": _op(
                "Revoke an API token (admin)",
                {"200": _json(_ref("Token"), "revoked")},
                params=[
                    {
                        "name": "token_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
            )
        },
        "/v1/aggregates": {
            "get": _op(
                "Aggregate types served for time travel",
                {"200": _json({"type": "object", "required": ["aggregates"]}, "names")},
            )
        },
        "/v1/aggregates/{name}/{id}": {
            "get": _op(
                "An aggregate's state after each event",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["aggregate", "id", "stream_id", "history"],
                            "properties": {
                                "history": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["version", "type", "data", "state"],
                                    },
                                }
                            },
                        },
                        "its history",
                    )
                },
                params=[
                    _NAME,
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    _q("to", {"type": "integer", "minimum": 1}, "up to this version"),
                ],
            )
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {
                    "200": {
                        "description": "text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/healthz": {
            "get": _op(
                "Liveness: the store answers",
                {"200": _json({"type": "object", "required": ["status", "head_position"]}, "ok")},
                public=True,
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "eventkeep",
            "version": "1",
            "description": (
                "The eventkeep event store over HTTP. Errors are RFC 9457 problem documents."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
