"""``eventkeep verify``: walk every stream's hash chain and report tampering."""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from eventkeep import EventStore
from eventkeep.cli._common import (
    EXIT_FAILED,
    console,
    fail,
    json_option,
    pass_store,
    plural,
    print_json,
)

__all__ = ["verify"]


@click.command()
@json_option
@pass_store()
def verify(store: EventStore, as_json: bool) -> None:
    """Check every stream's hash chain: is the stored history intact?

    Exits 0 when every chain is intact and 1 when a chain is broken, listing the first broken
    link of each damaged stream. With --json, prints {ok, events_checked, streams_checked,
    broken: [{stream_id, version, position, reason}]}.

    \b
    Examples:
      eventkeep verify
      eventkeep verify --json
    """
    report = store.verify()
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "events_checked": report.events_checked,
                "streams_checked": report.streams_checked,
                "broken": [link._asdict() for link in report.broken],
            }
        )
    elif report.ok:
        console().print(
            f"All clear: {plural(report.events_checked, 'event')} in "
            f"{plural(report.streams_checked, 'stream')} checked, every hash chain is intact."
        )
    else:
        table = Table(title="broken hash chains")
        table.title_justify = "left"
        table.add_column("Stream", overflow="fold")
        table.add_column("Version", justify="right", no_wrap=True)
        table.add_column("Position", justify="right", no_wrap=True)
        table.add_column("Problem", overflow="fold", ratio=1)
        for link in report.broken:
            position = "-" if link.position is None else str(link.position)
            table.add_row(Text(link.stream_id), str(link.version), position, Text(link.reason))
        console().print(table)
    if not report.ok:
        fail(
            f"verify found {plural(len(report.broken), 'broken hash chain')} "
            f"({plural(report.events_checked, 'event')} in "
            f"{plural(report.streams_checked, 'stream')} checked)",
            EXIT_FAILED,
        )
