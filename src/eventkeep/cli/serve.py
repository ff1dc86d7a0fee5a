"""``eventkeep serve``: the HTTP API, live subscriptions and the web console."""

from __future__ import annotations

import importlib
import ipaddress
from typing import Any

import click

from eventkeep.cli._common import EXIT_USAGE, fail, store_url

__all__ = ["serve"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load(target: str) -> Any:
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        fail(f"{target!r}: give an aggregate as module:attribute", EXIT_USAGE)
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        fail(f"{target!r}: cannot load it ({exc})", EXIT_USAGE)


@click.command(short_help="Serve the HTTP API, live subscriptions and the web console.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=2113, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--anonymous-read",
    is_flag=True,
    help="Let requests without a token read (never write); refused unless --host is loopback.",
)
@click.option(
    "--aggregate",
    "aggregates",
    multiple=True,
    metavar="MODULE:CLASS",
    help="An Aggregate class or Decider the console can time-travel (repeatable).",
)
@click.option(
    "--max-body-bytes",
    default=1 << 20,
    show_default=True,
    type=click.IntRange(min=1024),
    help="Refuse request bodies larger than this (413).",
)
@click.option(
    "--ssl-certfile", type=click.Path(exists=True, dir_okay=False), help="TLS: certificate."
)
@click.option(
    "--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS: private key."
)
@click.option("--log-level", default="info", show_default=True, help="uvicorn's log level.")
def serve(
    host: str,
    port: int,
    anonymous_read: bool,
    aggregates: tuple[str, ...],
    max_body_bytes: int,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    log_level: str,
) -> None:
    """Serve the store over HTTP: the JSON API under /v1 (OpenAPI at /openapi.json), live
    subscriptions as Server-Sent Events, Prometheus metrics at /metrics and the web console
    at /. Every write needs an API token (eventkeep tokens create). See docs/http.md.

    \b
    Examples:
      eventkeep serve --store sqlite:///bank.db
      eventkeep serve --store postgresql://localhost/events --host 0.0.0.0 --port 2113 \\
          --ssl-certfile cert.pem --ssl-keyfile key.pem
      eventkeep serve --anonymous-read --aggregate eventkeep.examples.bank.account:BankAccount
    """
    from eventkeep.server import require_server_extra

    require_server_extra()
    if anonymous_read and not _is_loopback(host):
        fail(f"--anonymous-read is for loopback only; --host {host} is not", EXIT_USAGE)
    import uvicorn

    from eventkeep.server.app import ServerConfig, build_app

    config = ServerConfig(
        store_url=store_url(),
        anonymous_read=anonymous_read,
        max_body_bytes=max_body_bytes,
        aggregates={target.rpartition(":")[2]: _load(target) for target in aggregates},
    )
    uvicorn.run(
        build_app(config),
        host=host,
        port=port,
        log_level=log_level,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        timeout_graceful_shutdown=3,
    )
