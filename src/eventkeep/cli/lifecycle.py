"""``eventkeep delete``, ``retention``, ``compact``, ``archive`` and ``operations``: the
stream lifecycle (docs/lifecycle.md), thin over the store's API.

Archives go to the store's archive directory: next to a SQLite file by default
(``<file>-archives``), else the ``archive_dir`` URL option (required for PostgreSQL).
"""

from __future__ import annotations

import datetime
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from eventkeep import EventStore, Operation
from eventkeep.cli._common import console, json_option, pass_store, plural, print_json

__all__ = ["archive", "compact", "delete", "operations", "retention"]

by_option = click.option(
    "--by", default="", help="Who asks (recorded in the operations log; default: the OS user)."
)
reason_option = click.option("--reason", default="", help="Why (recorded in the operations log).")
compress_option = click.option(
    "--no-compress",
    "plain",
    is_flag=True,
    help="Write the archive as plain JSON lines (default: gzip-compressed).",
)


def _op_json(op: Operation) -> dict[str, Any]:
    return op._asdict()


def _when(op: Operation) -> str:
    moment = datetime.datetime.fromtimestamp(op.recorded_at / 1e6, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _said(op: Operation | None, what: str) -> None:
    if op is None:
        console().print(f"Nothing to {what}.")
        return
    moved = f"; {plural(op.events, 'event')} moved to {op.archive_file}" if op.events else ""
    console().print(Text(f"Done: {op.kind} {op.operation_id}{moved}."))


@click.command()
@click.argument("stream")
@click.option("--hard", is_flag=True, help="Remove its events too (through an archive file).")
@by_option
@reason_option
@compress_option
@json_option
@pass_store(writes=True)
def delete(
    store: EventStore, stream: str, hard: bool, by: str, reason: str, plain: bool, as_json: bool
) -> None:
    """Delete STREAM: reads of it then say it was deleted, when, by whom and why.

    Soft by default (a tombstone; the events stay). --hard moves its events to an archive file
    and out of the live tables. Appending at its version revives it. With --json, prints the
    logged operation.

    \b
    Examples:
      eventkeep delete order-17 --reason "duplicate order"
      eventkeep delete customer-42 --hard --by dpo@example.com --reason "erasure request"
    """
    op = store.delete_stream(stream, hard=hard, by=by, reason=reason, compress=not plain)
    if as_json:
        print_json(_op_json(op))
    else:
        _said(op, "delete")


@click.command()
@click.argument("stream")
@click.option("--max-age", type=float, help="Seconds: events recorded longer ago go.")
@click.option("--max-count", type=click.IntRange(min=0), help="Keep at most the last N events.")
@click.option("--truncate-before", type=click.IntRange(min=1), help="Events before it go.")
@click.option("--clear", is_flag=True, help="Remove the stream's retention.")
@json_option
@pass_store(writes=True)
def retention(
    store: EventStore,
    stream: str,
    max_age: float | None,
    max_count: int | None,
    truncate_before: int | None,
    clear: bool,
    as_json: bool,
) -> None:
    """Show or set the retention of STREAM; `eventkeep compact` applies it.

    Without options, prints the current retention. Setting replaces all of it.

    \b
    Examples:
      eventkeep retention audit-2024 --max-age 31536000
      eventkeep retention sensor-7 --max-count 1000
      eventkeep retention order-1 --truncate-before 50
      eventkeep retention order-1 --clear
    """
    if clear or max_age is not None or max_count is not None or truncate_before is not None:
        store.set_retention(
            stream, max_age=max_age, max_count=max_count, truncate_before=truncate_before
        )
    current = store.retention(stream)
    if as_json:
        print_json(
            {"stream_id": stream, "retention": None if current is None else current._asdict()}
        )
    elif current is None:
        console().print(Text(f"{stream}: no retention (everything is kept)."))
    else:
        parts = [f"{k.replace('_', ' ')} {v:g}" for k, v in current._asdict().items() if v]
        console().print(Text(f"{stream}: {', '.join(parts)}."))


@click.command()
@by_option
@click.option("--reason", default="retention", show_default=True, help="Why (logged).")
@compress_option
@json_option
@pass_store(writes=True)
def compact(store: EventStore, by: str, reason: str, plain: bool, as_json: bool) -> None:
    """Apply every stream's retention: archive, then remove, what it says is gone.

    Safe to run again (it removes nothing new). With --json, prints {events, operations}.

    \b
    Examples:
      eventkeep compact
      eventkeep --store "postgresql://app@db/app?archive_dir=/srv/archives" compact --json
    """
    if as_json:
        report = store.compact(by=by, reason=reason, compress=not plain)
        print_json(
            {"events": report.events, "operations": [_op_json(o) for o in report.operations]}
        )
        return
    with console().status("Compacting: archiving what retention says is gone..."):
        report = store.compact(by=by, reason=reason, compress=not plain)
    console().print(
        f"Compacted: {plural(report.events, 'event')} archived and removed from "
        f"{plural(len(report.operations), 'stream')}."
    )


@click.command()
@click.argument("stream", required=False)
@click.option("--before-version", type=click.IntRange(min=1), help="With STREAM: the cut.")
@click.option(
    "--before-position", type=click.IntRange(min=1), help="Without STREAM: cut the whole log."
)
@by_option
@reason_option
@compress_option
@json_option
@pass_store(writes=True)
def archive(
    store: EventStore,
    stream: str | None,
    before_version: int | None,
    before_position: int | None,
    by: str,
    reason: str,
    plain: bool,
    as_json: bool,
) -> None:
    """Move the old prefix of STREAM (or of the whole log) into an archive file.

    The archive holds every stored field as JSON lines; its sha256 is in the operations log;
    `eventkeep read STREAM --archived` reads it back. With --json, prints the operation (null:
    nothing to move).

    \b
    Examples:
      eventkeep archive order-1 --before-version 100
      eventkeep archive --before-position 1000000 --reason "yearly archive"
    """
    with console().status("Archiving..."):
        op = store.archive(
            stream,
            before_version=before_version,
            before_position=before_position,
            by=by,
            reason=reason,
            compress=not plain,
        )
    if as_json:
        print_json(None if op is None else _op_json(op))
    else:
        _said(op, "archive")


@click.command()
@click.option("--stream", help="Only the operations on this stream.")
@json_option
@pass_store()
def operations(store: EventStore, stream: str | None, as_json: bool) -> None:
    """List the operations log: every delete, truncation, retention and archive.

    With --json, prints a JSON array of operations.

    \b
    Examples:
      eventkeep operations
      eventkeep operations --stream order-1 --json
    """
    found = [op for op in store.operations() if stream is None or op.stream_id == stream]
    if as_json:
        print_json([_op_json(op) for op in found])
        return
    table = Table(title=f"operations log ({plural(len(found), 'operation')})")
    table.title_justify = "left"
    for name in ("When", "Kind", "Stream", "Events", "Positions", "By", "Reason", "Archive"):
        table.add_column(name, overflow="fold")
    for op in found:
        positions = f"{op.first_position}-{op.last_position}" if op.events else "-"
        table.add_row(
            _when(op),
            op.kind,
            Text(op.stream_id or "(log)"),
            str(op.events),
            positions,
            Text(op.by),
            Text(op.reason),
            Text(op.archive_file or "-"),
        )
    console().print(table)
