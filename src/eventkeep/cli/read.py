"""``eventkeep read`` (one stream) and ``eventkeep read-all``/``log`` (the global log)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import click
from rich.table import Column, Table
from rich.text import Text

from eventkeep import EventStore, NotFoundError, Query, QueryItem, RecordedEvent
from eventkeep.cli._common import (
    console,
    data_text,
    event_json,
    json_option,
    pass_store,
    plural,
    print_json,
    print_json_array,
    when_text,
)

__all__ = ["query", "read", "read_all"]

ROWS_PER_TABLE = 500
"""Long reads print several tables of this many rows, so output starts before the read ends."""

limit_option = click.option(
    "--limit", "-n", type=click.IntRange(min=0), help="Print at most this many events."
)


@click.command()
@click.argument("stream")
@click.option(
    "--from", "from_version", type=click.IntRange(min=1), default=1, help="First version."
)
@click.option("--to", "to_version", type=click.IntRange(min=0), help="Last version.")
@click.option("--backwards", "-b", is_flag=True, help="Newest first.")
@click.option(
    "--archived",
    is_flag=True,
    help="Also read the events lifecycle operations moved to archive files (docs/lifecycle.md).",
)
@limit_option
@json_option
@pass_store()
def read(
    store: EventStore,
    stream: str,
    from_version: int,
    to_version: int | None,
    backwards: bool,
    archived: bool,
    limit: int | None,
    as_json: bool,
) -> None:
    """Print the events of STREAM in version order.

    With --json, prints one JSON array of events (one event per line): position, stream_id,
    version, type, schema_version, event_id, recorded_at, data and metadata.

    \b
    Examples:
      eventkeep read account-1
      eventkeep read account-1 --backwards --limit 1     # the latest event
      eventkeep read account-1 --from 10 --to 20 --json
      eventkeep read account-1 --archived      # with the history archived by compact
    """
    events = store.read_stream(
        stream, from_version, to_version, backwards=backwards, limit=limit, archived=archived
    )
    first = next(events, None)
    if first is None and store.stream_version(stream) == 0:
        raise NotFoundError(f"stream {stream!r} does not exist")
    found = events if first is None else itertools.chain([first], events)
    if as_json:
        print_json_array(event_json(e) for e in found)
        return
    title = f"{stream} (version {store.stream_version(stream)})"
    _print_tables(found, title, STREAM_HEADERS, _stream_row)


@click.command()
@click.option(
    "--after",
    type=click.IntRange(min=0),
    default=0,
    help="Start after this global position (a checkpoint).",
)
@limit_option
@click.option(
    "--type",
    "-t",
    "types",
    multiple=True,
    metavar="TYPE",
    help="Only events of this type (repeat for several).",
)
@click.option("--prefix", "-p", help="Only streams whose id starts with this, e.g. account-.")
@json_option
@pass_store()
def read_all(
    store: EventStore,
    after: int,
    limit: int | None,
    types: tuple[str, ...],
    prefix: str | None,
    as_json: bool,
) -> None:
    """Print the global log in position order (alias: log).

    With --json, prints one JSON array of events (one event per line), as for read.

    \b
    Examples:
      eventkeep read-all
      eventkeep log --after 1200 --limit 50
      eventkeep log --type Deposited --type Withdrawn --prefix account- --json
    """
    events = store.read_all(after, limit, types=types or None, stream_prefix=prefix)
    if as_json:
        print_json_array(event_json(e) for e in events)
        return
    _print_tables(events, "global log", LOG_HEADERS, _log_row)


@click.command()
@click.option(
    "--type",
    "-t",
    "types",
    multiple=True,
    metavar="TYPE",
    help="Events of this type (repeat for several: any of them).",
)
@click.option(
    "--tag",
    "-g",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Events carrying this tag (repeat for several: all of them).",
)
@click.option(
    "--after", type=click.IntRange(min=0), default=0, help="Only events after this position."
)
@limit_option
@json_option
@pass_store()
def query(
    store: EventStore,
    types: tuple[str, ...],
    tags: tuple[str, ...],
    after: int,
    limit: int | None,
    as_json: bool,
) -> None:
    """Print the events of any --type carrying every --tag, in position order, and the head:
    the position an append conditioned on this query would name (DCB, see docs/dcb.md).

    With neither --type nor --tag, every event matches. With --json, prints one JSON object:
    {"head": N, "events": [...]} (events as for read).

    \b
    Examples:
      eventkeep query --tag username:ann
      eventkeep query --type StudentSubscribed --tag student:ann --json
      eventkeep query --tag course:math --after 1200 --limit 50
    """
    result = store.read(Query([QueryItem(types=types, tags=tags)]), after=after, limit=limit)
    if as_json:
        print_json({"head": result.head, "events": [event_json(e) for e in result]})
        return
    wanted = [*(f"type {t}" for t in types), *(f"tag {t}" for t in tags)] or ["every event"]
    title = f"{', '.join(wanted)} (head {result.head})"
    _print_tables(iter(result.events), title, QUERY_HEADERS, _query_row)


Row = tuple[str | Text, ...]


def _print_tables(
    events: Iterator[RecordedEvent],
    title: str,
    headers: tuple[str, ...],
    row: Callable[[RecordedEvent], Row],
) -> None:
    out = console()
    printed = 0
    while True:
        chunk = list(itertools.islice(events, ROWS_PER_TABLE))
        if not chunk and printed:
            break
        table = Table(*_columns(*headers), title=title if not printed else f"{title}, continued")
        table.title_justify = "left"
        for recorded in chunk:
            table.add_row(*row(recorded))
        out.print(table)
        printed += len(chunk)
        if len(chunk) < ROWS_PER_TABLE:
            break
    out.print(plural(printed, "event"), style="dim")


def _columns(*names: str) -> tuple[Column, ...]:
    """Fresh columns by header (rich keeps cells in its columns, so they are never shared).

    Numbers are right-aligned and never wrapped, text folds, the data column takes the rest.
    """
    numeric = {"Ver", "Pos"}
    return tuple(
        Column(
            name,
            justify="right" if name in numeric else "left",
            no_wrap=name in numeric or name.startswith("Recorded"),
            overflow="fold",
            ratio=1 if name == "Data" else None,
        )
        for name in names
    )


STREAM_HEADERS = ("Ver", "Pos", "Type", "Recorded (UTC)", "Data")
LOG_HEADERS = ("Pos", "Stream", "Ver", "Type", "Data")
QUERY_HEADERS = ("Pos", "Stream", "Type", "Tags", "Data")


def _stream_row(e: RecordedEvent) -> Row:
    return (str(e.version), str(e.position), Text(e.type), when_text(e), Text(data_text(e)))


def _log_row(e: RecordedEvent) -> Row:
    return (str(e.position), Text(e.stream_id), str(e.version), Text(e.type), Text(data_text(e)))


def _query_row(e: RecordedEvent) -> Row:
    return (
        str(e.position),
        Text(e.stream_id),
        Text(e.type),
        Text(" ".join(e.tags)),
        Text(data_text(e)),
    )
