"""The JSON API under ``/v1``: appends, reads, queries, projections, verify, stats, tokens."""

from __future__ import annotations

import time
from typing import Any, overload

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventkeep.errors import NotFoundError, ValidationError
from eventkeep.server import wire
from eventkeep.server.state import ServerState, state_of
from eventkeep.store.recorded import RecordedEvent
from eventkeep.telemetry import span
from eventkeep.urls import redact

__all__ = ["ROUTES", "int_param", "read_body"]

_encode = msgspec.json.Encoder().encode


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status, headers, media_type="application/json")


@overload
def int_param(
    request: Request, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int: ...
@overload
def int_param(
    request: Request, name: str, default: None, *, minimum: int = 0, maximum: int | None = None
) -> int | None: ...
def int_param(
    request: Request,
    name: str,
    default: int | None,
    *,
    minimum: int = 0,
    maximum: int | None = None,
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationError(
            f"query parameter {name!r} must be an int >= {minimum}, got {raw!r:.40}"
        )
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f" and <= {maximum}" if maximum is not None else ""
        raise ValidationError(f"query parameter {name!r} must be >= {minimum}{bound}, got {value}")
    return value


def bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0", ""):
        raise ValidationError(f"query parameter {name!r} must be true or false, got {raw!r:.40}")
    return raw in ("true", "1")


def text_param(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    return raw if raw else None


async def read_body(request: Request, state: ServerState) -> bytes:
    """The body, refused with 413 past the server's limit (whatever Content-Length said)."""
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > state.config.max_body_bytes:
            from eventkeep.server.problems import HTTPProblem

            raise HTTPProblem(
                413, f"the request body is larger than {state.config.max_body_bytes} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _page(events: list[RecordedEvent], limit: int) -> dict[str, Any]:
    return {
        "events": [wire.event_json(e) for e in events],
        "next_after": events[-1].position if len(events) >= limit else None,
    }


# -- streams ------------------------------------------------------------------------------------


async def append_to_stream(request: Request) -> Response:
    state = state_of(request)
    stream_id = request.path_params["stream_id"]
    await state.guard.require(request, "append", streams=[stream_id])
    body: wire.AppendBody = wire.decode_body(await read_body(request, state), wire.AppendBody)
    expected = wire.expected_version(body.expected_version, request.headers.get("if-match"))
    events = wire.new_events(body.events)
    traceparent = request.headers.get("traceparent")
    if traceparent:
        events = [
            ev
            if ev.metadata and "traceparent" in ev.metadata
            else msgspec.structs.replace(
                ev, metadata={**(ev.metadata or {}), "traceparent": traceparent}
            )
            for ev in events
        ]
    may_replay = all(ev.event_id is not None for ev in events)
    head = await state.store.head_position() if may_replay else 0
    started = time.perf_counter()
    with span("eventkeep.append", traceparent, stream_id=stream_id, events=len(events)):
        result = await state.store.append(stream_id, events, expected)
    replayed = may_replay and result.positions[0] <= head
    if not replayed:
        state.metrics.observe_append(time.perf_counter() - started, len(events))
    return json_response(
        {**wire.result_json(result), "replayed": replayed},
        200 if replayed else 201,
        {"ETag": f'"{result.version}"', "Location": f"/v1/streams/{stream_id}"},
    )


async def read_stream(request: Request) -> Response:
    state = state_of(request)
    stream_id = request.path_params["stream_id"]
    await state.guard.require(request, "read", streams=[stream_id])
    low = int_param(request, "from", 1, minimum=1)
    high = int_param(request, "to", None)
    limit = int_param(request, "limit", 100, minimum=1, maximum=wire.MAX_LIMIT)
    backwards = bool_param(request, "backwards")
    with span("eventkeep.read_stream", request.headers.get("traceparent"), stream_id=stream_id):
        version = await state.store.stream_version(stream_id)
        if version == 0:
            raise NotFoundError(f"stream {stream_id!r} does not exist")
        events = await state.store.read_stream(
            stream_id, low, high, backwards=backwards, limit=limit
        ).list()
    etag = f'"{version}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return json_response(
        {
            "stream_id": stream_id,
            "version": version,
            "events": [wire.event_json(e) for e in events],
        },
        headers={"ETag": etag},
    )


async def list_streams(request: Request) -> Response:
    state = state_of(request)
    prefix = request.query_params.get("prefix", "")
    await state.guard.require(request, "read", prefix=prefix, every_stream=True)
    limit = int_param(request, "limit", 100, minimum=1, maximum=wire.MAX_LIMIT)
    streams = await state.store.list_streams(prefix, limit=limit)
    return json_response(
        {
            "streams": [
                {"stream_id": s.stream_id, "version": s.version, "last_position": s.last_position}
                for s in streams
            ]
        }
    )


async def read_log(request: Request) -> Response:
    state = state_of(request)
    prefix = text_param(request, "prefix")
    await state.guard.require(request, "read", prefix=prefix, every_stream=True)
    after = int_param(request, "after", 0)
    limit = int_param(request, "limit", 100, minimum=1, maximum=wire.MAX_LIMIT)
    types = request.query_params.getlist("type") or None
    with span("eventkeep.read_all", request.headers.get("traceparent")):
        events = await state.store.read_all(after, limit, types=types, stream_prefix=prefix).list()
    head = await state.store.head_position()
    return json_response({**_page(events, limit), "head": head})


# -- DCB ------------------------------------------------------------------------------------


async def query(request: Request) -> Response:
    state = state_of(request)
    await state.guard.require(request, "read", every_stream=True)
    body: wire.QueryBody = wire.decode_body(await read_body(request, state), wire.QueryBody)
    if body.limit is not None and not 1 <= body.limit <= wire.MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {wire.MAX_LIMIT}, got {body.limit}")
    limit = body.limit or wire.MAX_LIMIT
    result = await state.store.read(wire.query_of(body.items), after=body.after, limit=limit)
    return json_response(
        {"events": [wire.event_json(e) for e in result.events], "head": result.head}
    )


async def append_events(request: Request) -> Response:
    state = state_of(request)
    await state.guard.require(request, "append", every_stream=True)
    body: wire.StreamlessAppendBody = wire.decode_body(
        await read_body(request, state), wire.StreamlessAppendBody
    )
    events = wire.new_events(body.events)
    condition = wire.condition_of(body.condition)
    may_replay = all(ev.event_id is not None for ev in events)
    head = await state.store.head_position() if may_replay else 0
    started = time.perf_counter()
    with span("eventkeep.append", request.headers.get("traceparent"), events=len(events)):
        result = await state.store.append_events(events, condition=condition)
    replayed = may_replay and result.positions[0] <= head
    if not replayed:
        state.metrics.observe_append(time.perf_counter() - started, len(events))
    return json_response(
        {**wire.result_json(result), "replayed": replayed}, 200 if replayed else 201
    )


# -- store-wide ---------------------------------------------------------------------------------


async def stats(request: Request) -> Response:
    state = state_of(request)
    await state.guard.require(request, "read", every_stream=True)
    found = await state.store.stats()
    return json_response(
        {
            "events": found.events,
            "streams": found.streams,
            "head_position": found.head_position,
            "types": found.types,
            "url": redact(state.store.url),
        }
    )


async def verify(request: Request) -> Response:
    state = state_of(request)
    await state.guard.require(request, "admin")
    raw = await read_body(request, state)
    body: wire.VerifyBody = wire.decode_body(raw or b"{}", wire.VerifyBody)
    report = await state.store.verify(deep=body.deep)
    return json_response(
        {
            "ok": report.ok,
            "events_checked": report.events_checked,
            "streams_checked": report.streams_checked,
            "broken": [
                {
                    "stream_id": b.stream_id,
                    "version": b.version,
                    "position": b.position,
                    "reason": b.reason,
                }
                for b in report.broken
            ],
            "problems": list(report.problems),
            "checked": list(report.checked),
            "not_checked": list(report.not_checked),
        }
    )


ROUTES = [
    Route("/v1/streams", list_streams, methods=["GET"]),
    Route("/v1/streams/{stream_id:path}", read_stream, methods=["GET"]),
    Route("/v1/streams/{stream_id:path}", append_to_stream, methods=["POST"]),
    Route("/v1/log", read_log, methods=["GET"]),
    Route("/v1/query", query, methods=["POST"]),
    Route("/v1/append", append_events, methods=["POST"]),
    Route("/v1/stats", stats, methods=["GET"]),
    Route("/v1/verify", verify, methods=["POST"]),
]
