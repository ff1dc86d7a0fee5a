"""The eventkeep HTTP server: a JSON API under ``/v1``, live subscriptions (Server-Sent
Events), scoped API tokens, Prometheus metrics and a web console, over ``eventkeep.aio``.

Not imported by ``import eventkeep``; it needs the ``server`` extra (starlette, uvicorn)::

    pip install 'eventkeep[server]'
    eventkeep tokens create --name deploy --scope append
    eventkeep serve --store postgresql://localhost/events --port 2113

:func:`create_app` builds the ASGI application (see docs/http.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventkeep.errors import ConfigurationError

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["create_app", "require_server_extra"]


def require_server_extra() -> None:
    """Raise ``ConfigurationError`` saying what to install when starlette or uvicorn is missing."""
    import importlib.util

    missing = [name for name in ("starlette", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigurationError(
            f"the eventkeep server needs {' and '.join(missing)}: pip install 'eventkeep[server]'"
        )


def create_app(store_url: str, **options: Any) -> Starlette:
    """The ASGI application serving the store at ``store_url`` (see :class:`ServerConfig`
    for ``options``)."""
    require_server_extra()
    from eventkeep.server.app import ServerConfig, build_app

    return build_app(ServerConfig(store_url=store_url, **options))
