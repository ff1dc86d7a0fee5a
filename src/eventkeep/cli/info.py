"""``eventkeep streams`` and ``eventkeep stats``: what the store holds."""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from eventkeep import EventStore
from eventkeep.cli._common import (
    console,
    display_url,
    json_option,
    pass_store,
    plural,
    print_json,
    print_json_array,
    store_url,
)

__all__ = ["stats", "streams"]


@click.command()
@click.option("--prefix", "-p", default="", help="Only streams whose id starts with this.")
@click.option("--limit", "-n", type=click.IntRange(min=0), help="List at most this many.")
@json_option
@pass_store()
def streams(store: EventStore, prefix: str, limit: int | None, as_json: bool) -> None:
    """List streams with their version and last position, sorted by id.

    With --json, prints one JSON array of {stream_id, version, last_position}.

    \b
    Examples:
      eventkeep streams
      eventkeep streams --prefix account- --limit 20 --json
    """
    found = store.list_streams(prefix, limit=limit)
    if as_json:
        print_json_array(
            {"stream_id": s.stream_id, "version": s.version, "last_position": s.last_position}
            for s in found
        )
        return
    table = Table(title=f"streams{f' starting with {prefix!r}' if prefix else ''}")
    table.title_justify = "left"
    table.add_column("Stream", overflow="fold")
    table.add_column("Version", justify="right", no_wrap=True)
    table.add_column("Last position", justify="right", no_wrap=True)
    for info in found:
        table.add_row(Text(info.stream_id), str(info.version), str(info.last_position))
    out = console()
    out.print(table)
    out.print(plural(len(found), "stream"), style="dim")


@click.command()
@json_option
@pass_store()
def stats(store: EventStore, as_json: bool) -> None:
    """Show event, stream and per-type counts, and the head position.

    With --json, prints {events, streams, head_position, types: {type: count}}.

    \b
    Examples:
      eventkeep stats
      eventkeep --store sqlite:///bank.db stats --json
    """
    numbers = store.stats()
    if as_json:
        print_json(
            {
                "events": numbers.events,
                "streams": numbers.streams,
                "head_position": numbers.head_position,
                "types": dict(sorted(numbers.types.items())),
            }
        )
        return
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold", no_wrap=True)
    summary.add_column(overflow="fold")
    summary.add_row("Store", Text(display_url(store_url())))
    summary.add_row("Events", str(numbers.events))
    summary.add_row("Streams", str(numbers.streams))
    summary.add_row("Head position", str(numbers.head_position))
    out = console()
    out.print(summary)
    if numbers.types:
        table = Table(title="events per type")
        table.title_justify = "left"
        table.add_column("Type", overflow="fold")
        table.add_column("Events", justify="right", no_wrap=True)
        for name, count in sorted(numbers.types.items(), key=lambda item: (-item[1], item[0])):
            table.add_row(Text(name), str(count))
        out.print(table)
