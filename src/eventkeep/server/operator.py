"""Operator endpoints: projections (status, retry, skip), tokens, and time travel."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from eventkeep.domain.decider import DeciderAggregate
from eventkeep.domain.repository import Repository
from eventkeep.errors import EventkeepError, NotFoundError
from eventkeep.projections import projection_status, retry_projection, skip_event
from eventkeep.projections.checkpoints import ProjectionStatus, parked_events
from eventkeep.server import wire
from eventkeep.server.api import int_param, json_response, read_body
from eventkeep.server.state import state_of
from eventkeep.server.tokens import create_token, list_tokens, revoke_token

__all__ = ["ROUTES"]


def _status_json(status: ProjectionStatus, parked: list[Any]) -> dict[str, Any]:
    return {
        "name": status.name,
        "version": status.version,
        "state": status.state,
        "position": status.position,
        "head": status.head,
        "lag_events": status.lag_events,
        "lag_seconds": status.lag_seconds,
        "owner": status.owner,
        "error": status.error,
        "last_error": status.last_error,
        "failing_position": status.failing_position,
        "retries": status.retries,
        "rebuild_progress": status.rebuild_progress,
        "skips": [
            {"position": s.position, "reason": s.reason, "by": s.by, "at": s.at, "error": s.error}
            for s in status.skips
        ],
        "parked": [
            {"position": p.position, "stream_id": p.stream_id, "type": p.type, "error": p.error}
            for p in parked
        ],
    }


async def projections(request: Request) -> Response:
    state = state_of(request)
    await state.guard.require(request, "read", every_stream=True)
    store = state.store.sync

    def collect() -> list[dict[str, Any]]:
        out = []
        for status in projection_status(store):
            parked = parked_events(store, status.name) if status.parked else []
            out.append(_status_json(status, parked))
        return out

    return json_response({"projections": await run_in_threadpool(collect)})


async def projection(request: Request) -> Response:
    state = state_of(request)
    await state.guard.require(request, "read", every_stream=True)
    name = request.path_params["name"]
    store = state.store.sync

    def collect() -> dict[str, Any]:
        status = projection_status(store, name)[0]
        parked = parked_events(store, name) if status.parked else []
        return _status_json(status, parked)

    return json_response(await run_in_threadpool(collect))


async def retry(request: Request) -> Response:
    state = state_of(request)
    await state.guard.require(request, "admin")
    name = request.path_params["name"]
    await run_in_threadpool(retry_projection, state.store.sync, name)
    return json_response({"name": name, "retry": "requested"}, 202)


async def skip(request: Request) -> Response:
    state = state_of(request)
    token = await state.guard.require(request, "admin")
    name = request.path_params["name"]
    body: wire.SkipBody = wire.decode_body(await read_body(request, state), wire.SkipBody)
    by = f"token {token.token_id} ({token.name})"
    await run_in_threadpool(
        lambda: skip_event(state.store.sync, name, body.position, reason=body.reason, by=by)
    )
    return json_response({"name": name, "skipped": body.position})


# -- tokens -------------------------------------------------------------------------------------


async def tokens(request: Request) -> Response:
    state = state_of(request)
    await state.guard.require(request, "admin")
    found = await run_in_threadpool(list_tokens, state.store.sync)
    return json_response({"tokens": [t.to_json() for t in found]})


async def new_token(request: Request) -> Response:
    state = state_of(request)
    await state.guard.require(request, "admin")
    body: wire.TokenBody = wire.decode_body(await read_body(request, state), wire.TokenBody)
    secret, record = await run_in_threadpool(
        lambda: create_token(
            state.store.sync,
            name=body.name,
            scope=body.scope,
            prefixes=body.prefixes,
            rate_limit=body.rate_limit,
        )
    )
    return json_response({"token": secret, **record.to_json()}, 201)


async def revoke(request: Request) -> Response:
    state = state_of(request)
    await state.guard.require(request, "admin")
    record = await run_in_threadpool(
        revoke_token, state.store.sync, request.path_params["token_id"]
    )
    state.guard.forget(record.token_id)
    return json_response(record.to_json())


# -- time travel --------------------------------------------------------------------------------


async def aggregates(request: Request) -> Response:
    state = state_of(request)
    await state.guard.require(request, "read", every_stream=True)
    out = []
    for name, kind in sorted(state.config.aggregates.items()):
        repository = Repository(state.store.sync, kind, snapshots=False)
        out.append({"name": name, "prefix": repository.prefix, "ids": repository.ids()[:200]})
    return json_response({"aggregates": out})


def _state_json(aggregate: Any) -> Any:
    """The aggregate's state as JSON: what a snapshot of it holds (a Decider's state, or an
    Aggregate's declared fields, defaults included), else its public attributes."""
    try:
        value: Any = aggregate._ek_state_value()
    except EventkeepError:  # state outside the declared fields: show what there is
        value = {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}
    if isinstance(value, dict) and not isinstance(aggregate, DeciderAggregate):
        for name in aggregate.__state_fields__:  # unset fields show their class default
            if name not in value and hasattr(aggregate, name):
                value[name] = getattr(aggregate, name)
    return msgspec.to_builtins(value, enc_hook=str, str_keys=True)


async def history(request: Request) -> Response:
    state = state_of(request)
    name = request.path_params["name"]
    key = request.path_params["id"]
    kind = state.config.aggregates.get(name)
    if kind is None:
        raise NotFoundError(f"no aggregate type named {name!r} is served (serve --aggregate)")
    repository = Repository(state.store.sync, kind, snapshots=False)
    stream_id = repository.stream_id(key)
    await state.guard.require(request, "read", streams=[stream_id])
    to_version = int_param(request, "to", None, minimum=1)

    def collect() -> list[dict[str, Any]]:
        return [
            {
                "version": entry.version,
                "position": entry.recorded.position,
                "type": entry.recorded.type,
                "recorded_at": entry.recorded_at.isoformat(),
                "data": msgspec.Raw(entry.recorded.raw_data),
                "state": _state_json(entry.state),
            }
            for entry in repository.history(key, to_version=to_version)
        ]

    return json_response(
        {
            "aggregate": name,
            "id": key,
            "stream_id": stream_id,
            "history": await run_in_threadpool(collect),
        }
    )


ROUTES = [
    Route("/v1/projections", projections, methods=["GET"]),
    Route("/v1/projections/{name}", projection, methods=["GET"]),
    Route("/v1/projections/{name}/retry", retry, methods=["POST"]),
    Route("/v1/projections/{name}/skip", skip, methods=["POST"]),
    Route("/v1/tokens", tokens, methods=["GET"]),
    Route("/v1/tokens", new_token, methods=["POST"]),
    Route("/v1/tokens/{token_id}", revoke, methods=["DELETE"]),
    Route("/v1/aggregates", aggregates, methods=["GET"]),
    Route("/v1/aggregates/{name}/{id}", history, methods=["GET"]),
]
