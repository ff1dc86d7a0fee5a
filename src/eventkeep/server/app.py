"""The ASGI application: routes, the store's lifetime, errors as problems, limits, metrics."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventkeep.aio import AsyncEventStore, open_store
from eventkeep.errors import EventkeepError, ValidationError
from eventkeep.projections import projection_status
from eventkeep.server import api, operator
from eventkeep.server.auth import Guard
from eventkeep.server.live import Broker, sse_events
from eventkeep.server.metrics import Metrics
from eventkeep.server.openapi import openapi_document
from eventkeep.server.problems import HTTPProblem, problem_for, problem_response
from eventkeep.server.state import ServerConfig, ServerState, state_of
from eventkeep.server.wire import QueryItemBody, decode_body, query_of
from eventkeep.store.dcb import Query
from eventkeep.store.recorded import RecordedEvent

__all__ = ["ServerConfig", "build_app"]

_PAGE = 500


def _after(request: Request) -> int:
    """Where a live subscription starts: ``Last-Event-ID`` (a reconnect) over ``after``."""
    last = request.headers.get("last-event-id")
    if last:
        if not last.isdigit() or len(last) > 18:
            raise ValidationError(f"Last-Event-ID must be a log position, got {last!r:.40}")
        return int(last)
    after = api.int_param(request, "after", None)
    return after if after is not None else -1


def _sse(request: Request, match: Any, catch_up: Any, after: int) -> StreamingResponse:
    state = state_of(request)
    return StreamingResponse(
        sse_events(
            state.broker,
            match,
            catch_up,
            after,
            heartbeat=state.config.heartbeat,
            still_allowed=lambda: state.guard.still_valid(request),
        ),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _start_after(state: ServerState, after: int) -> int:
    """-1 (no position given): from now on, like ``tail -f``."""
    return await state.store.head_position() if after < 0 else after


async def log_live(request: Request) -> Response:
    state = state_of(request)
    prefix = api.text_param(request, "prefix")
    await state.guard.require(request, "read", prefix=prefix, every_stream=True)
    types = request.query_params.getlist("type") or None
    type_set = set(types) if types else None
    after = await _start_after(state, _after(request))

    def match(event: RecordedEvent) -> bool:
        return (type_set is None or event.type in type_set) and (
            prefix is None or event.stream_id.startswith(prefix)
        )

    async def catch_up(position: int) -> list[RecordedEvent]:
        return await state.store.read_all(position, _PAGE, types=types, stream_prefix=prefix).list()

    return _sse(request, match, catch_up, after)


async def stream_live(request: Request) -> Response:
    state = state_of(request)
    stream_id = request.path_params["stream_id"]
    await state.guard.require(request, "read", streams=[stream_id])
    after = await _start_after(state, _after(request))

    def match(event: RecordedEvent) -> bool:
        return bool(event.stream_id == stream_id)

    async def catch_up(position: int) -> list[RecordedEvent]:
        page = await state.store.read_all(position, _PAGE, stream_prefix=stream_id).list()
        kept = [e for e in page if e.stream_id == stream_id]
        if page and not kept:  # only longer ids with this prefix: go on after them
            return await catch_up(page[-1].position)
        return kept

    return _sse(request, match, catch_up, after)


async def query_live(request: Request) -> Response:
    state = state_of(request)
    await state.guard.require(request, "read", every_stream=True)
    raw = request.query_params.get("query")
    if not raw:
        raise ValidationError(
            'query parameter "query" is required: a JSON list of items like '
            '[{"types": ["Deposited"], "tags": ["account:1"]}]'
        )
    items = decode_body(raw.encode(), list[QueryItemBody])
    dcb: Query = query_of(items)
    after = await _start_after(state, _after(request))

    def match(event: RecordedEvent) -> bool:
        return dcb.matches(event.type, event.tags)

    async def catch_up(position: int) -> list[RecordedEvent]:
        return list((await state.store.read(dcb, after=position, limit=_PAGE)).events)

    return _sse(request, match, catch_up, after)


async def metrics(request: Request) -> Response:
    state = state_of(request)
    statuses = await run_in_threadpool(projection_status, state.store.sync)
    text = state.metrics.render(
        subscribers=len(state.broker.subscribers),
        dropped=state.broker.dropped_total,
        lags=[(s.name, s.lag_events, s.lag_seconds) for s in statuses],
    )
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


@functools.cache
def _openapi_bytes() -> bytes:
    return json.dumps(openapi_document()).encode()


async def openapi(request: Request) -> Response:
    return Response(_openapi_bytes(), media_type="application/json")


async def health(request: Request) -> Response:
    state = state_of(request)
    head = await state.store.head_position()
    return api.json_response({"status": "ok", "head_position": head})


_CONSOLE_HEADERS = {
    # The console loads only its own files; store data is inserted as text, and this stops
    # anything that slipped through from loading or sending elsewhere.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def console(request: Request) -> Response:
    path = str(resources.files("eventkeep.server").joinpath("static", "index.html"))
    return FileResponse(path, headers=_CONSOLE_HEADERS)


class Limits:
    """Refuses bodies whose Content-Length is over the limit before reading them, and counts
    answered requests for /metrics."""

    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (
                not value.isdigit() or int(value) > self.config.max_body_bytes
            ):
                response = problem_response(
                    413, f"the request body is larger than {self.config.max_body_bytes} bytes"
                )
                await response(scope, receive, send)
                return
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            app = scope.get("app")
            state = getattr(getattr(app, "state", None), "eventkeep", None)
            if state is not None:
                state.metrics.count_request(scope["method"], status)


async def _on_problem(request: Request, exc: Exception) -> Response:
    return problem_for(exc)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return problem_response(
            405,
            f"{request.method} is not allowed on {request.url.path}",
            headers=dict(exc.headers or {}),
        )
    if exc.status_code == 404:
        return problem_response(404, f"no such endpoint: {request.url.path}")
    return problem_response(exc.status_code, str(exc.detail))


def build_app(config: ServerConfig, *, store: AsyncEventStore | None = None) -> Starlette:
    """The application for ``config``; ``store``: an open async store to serve instead of
    opening ``config.store_url`` (it is not closed at shutdown)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        served = store or await open_store(config.store_url, **config.store_options)
        broker = Broker(served, max_queue=config.live_queue, interval=config.live_interval)
        await broker.start()
        app.state.eventkeep = ServerState(
            config,
            served,
            Guard(
                served,
                anonymous_read=config.anonymous_read,
                cache_seconds=config.token_cache_seconds,
            ),
            Metrics(),
            broker,
        )
        try:
            yield
        finally:
            await broker.stop()
            if store is None:
                await served.close()

    static = resources.files("eventkeep.server").joinpath("static")
    routes = [
        Route("/", console, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/v1/log/live", log_live, methods=["GET"]),
        Route("/v1/query/live", query_live, methods=["GET"]),
        Route("/v1/streams/{stream_id:path}/live", stream_live, methods=["GET"]),
        *api.ROUTES,
        *operator.ROUTES,
        Mount("/static", app=StaticFiles(directory=str(static)), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPProblem: _on_problem,
            EventkeepError: _on_problem,
            HTTPException: _on_http,
            Exception: _on_problem,
        },
    )
    app.add_middleware(Limits, config=config)
    return app
