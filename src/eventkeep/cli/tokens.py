"""``eventkeep tokens``: API tokens of the HTTP server (eventkeep serve)."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.table import Table

from eventkeep import EventStore
from eventkeep.cli._common import console, json_option, pass_store, print_json
from eventkeep.server.tokens import SCOPES, create_token, list_tokens, revoke_token

__all__ = ["tokens"]


@click.group(short_help="Create, list and revoke API tokens of the HTTP server.")
def tokens() -> None:
    """API tokens for eventkeep serve: a scope (read, append or admin, each including the ones
    before it), optionally limited to stream prefixes and a request rate. The store keeps only
    a digest of each token; it is shown once, when created.

    \b
    Examples:
      eventkeep tokens create --name ci --scope admin --json
      eventkeep tokens create --name billing --scope append --prefix invoice- --rate-limit 50
      eventkeep tokens list
      eventkeep tokens revoke 3f9a0c1b2d4e
    """


@tokens.command(short_help="Create a token; it is printed once.")
@click.option("--name", default="token", show_default=True, help="What the token is for.")
@click.option("--scope", type=click.Choice(SCOPES), required=True)
@click.option("--prefix", "prefixes", multiple=True, help="Only streams starting with this.")
@click.option("--rate-limit", type=click.FloatRange(min=0.001), help="Requests per second.")
@json_option
@pass_store(create=True)
def create(
    store: EventStore,
    name: str,
    scope: str,
    prefixes: tuple[str, ...],
    rate_limit: float | None,
    as_json: bool,
) -> None:
    """Create an API token and print it (once: only its digest is stored).

    \b
    Examples:
      eventkeep tokens create --name ops --scope admin
      TOKEN=$(eventkeep tokens create --scope append --json | jq -r .token)
    """
    secret, record = create_token(
        store, name=name, scope=scope, prefixes=prefixes, rate_limit=rate_limit
    )
    if as_json:
        print_json({"token": secret, **record.to_json()})
        return
    out = console()
    out.print(f"token {record.token_id} ({scope}) created; keep it now, it is not shown again:")
    out.print(secret, style="bold", soft_wrap=True)


@tokens.command(name="list", short_help="List tokens (never their secrets).")
@json_option
@pass_store()
def list_(store: EventStore, as_json: bool) -> None:
    """List every token, revoked ones too.

    \b
    Examples:
      eventkeep tokens list --json
    """
    found = list_tokens(store)
    if as_json:
        print_json([t.to_json() for t in found])
        return
    table = Table(title="API tokens", title_justify="left")
    for column in ("Id", "Name", "Scope", "Prefixes", "Rate limit", "Created", "Revoked"):
        table.add_column(column)
    for t in found:
        created = datetime.fromtimestamp(t.created_at / 1e6, UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            t.token_id,
            t.name,
            t.scope,
            ", ".join(t.prefixes) or "(all streams)",
            "" if t.rate_limit is None else f"{t.rate_limit:g}/s",
            created,
            "yes" if t.revoked else "",
        )
    console().print(table)


@tokens.command(short_help="Revoke a token.")
@click.argument("token_id")
@json_option
@pass_store(writes=True)
def revoke(store: EventStore, token_id: str, as_json: bool) -> None:
    """Revoke a token by its id (or the token itself): every later request with it is refused.

    \b
    Examples:
      eventkeep tokens revoke 3f9a0c1b2d4e
    """
    record = revoke_token(store, token_id)
    if as_json:
        print_json(record.to_json())
        return
    console().print(f"token {record.token_id} ({record.name}) revoked")
