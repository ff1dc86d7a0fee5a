"""What a running server holds: its configuration, store, guard, metrics and live broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

if TYPE_CHECKING:
    from eventkeep.aio import AsyncEventStore
    from eventkeep.server.auth import Guard
    from eventkeep.server.live import Broker
    from eventkeep.server.metrics import Metrics

__all__ = ["ServerConfig", "ServerState", "state_of"]


@dataclass(frozen=True)
class ServerConfig:
    """How to serve: the store, limits, and what the console may time-travel.

    - ``anonymous_read``: requests without a token may read (never write); for a server bound
      to loopback only (``eventkeep serve --anonymous-read``).
    - ``max_body_bytes``: larger request bodies are refused with 413.
    - ``aggregates``: name -> Aggregate class or Decider, for ``/v1/aggregates`` (time travel).
    - ``token_cache_seconds``: how long a server trusts a token the store said was valid: a
      token revoked through another server (or the CLI) is refused here within that time.
    - ``live_interval``: the live broker sends what was appended in this many seconds as one
      batch (one write per subscriber per batch, not per event).
    - ``heartbeat``: seconds between SSE heartbeats; ``live_queue``: how many events a live
      subscriber may fall behind before it is dropped.
    """

    store_url: str
    anonymous_read: bool = False
    max_body_bytes: int = 1 << 20
    aggregates: dict[str, Any] = field(default_factory=dict)
    heartbeat: float = 15.0
    token_cache_seconds: float = 1.0
    live_queue: int = 1000
    live_interval: float = 0.02
    store_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServerState:
    config: ServerConfig
    store: AsyncEventStore
    guard: Guard
    metrics: Metrics
    broker: Broker


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.eventkeep
    return state
