"""``eventkeep export``, ``import``, ``copy`` and ``backup``: moving history between stores,
thin over :mod:`eventkeep.moving`."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import IO, Any

import click

import eventkeep
from eventkeep import EventStore
from eventkeep.cli._common import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    display_url,
    fail,
    pass_store,
    plural,
    progress_bar,
)
from eventkeep.moving import (
    ImportReport,
    backup_sqlite,
    copy_store,
    import_file,
    resume_position,
)
from eventkeep.moving.backup import PG_DUMP_HINT
from eventkeep.moving.files import export_file
from eventkeep.moving.jsonl import ExportHeader

__all__ = ["backup", "copy", "export", "import_"]


@click.command()
@click.option("--after", type=click.IntRange(min=0), default=0, help="Only events after P.")
@click.option(
    "--stream-prefix", default=None, help="Only streams whose id starts with X (e.g. order-)."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to FILE (a new file) instead of stdout.",
)
@click.option(
    "--with-keys",
    is_flag=True,
    help="Also the keys of the personal data in the events: whoever holds the file can read "
    "that data. Without them it imports redacted (as if forgotten).",
)
@pass_store()
def export(
    store: EventStore, after: int, stream_prefix: str | None, output: Path | None, with_keys: bool
) -> None:
    """Write the store's events to JSON lines, exactly as stored (for import elsewhere).

    One header line, the stream lifecycle's records (operations log, removals, stream
    metadata; the forget log; with --with-keys the keys of personal data; whole exports only),
    one line per event (ids, versions, positions, recorded_at,
    data and metadata bytes, tags, hashes), one end line; see docs/moving.md for the format.
    Archive files are not in the export: it names them, and import --archives DIR takes them.

    \b
    Examples:
      eventkeep export > log.jsonl
      eventkeep export --with-keys -o full-copy.jsonl
      eventkeep --store sqlite:///app.db export --after 1000 --stream-prefix order- -o orders.jsonl
    """
    total = max(store.head_position() - after, 0)
    if output is not None and output.exists():
        fail(f"{output} exists already: export writes a new file", EXIT_USAGE)
    with contextlib.ExitStack() as stack:
        out: IO[bytes] = (
            stack.enter_context(output.open("xb")) if output is not None else sys.stdout.buffer
        )
        advance = stack.enter_context(progress_bar("exporting", total))
        count = export_file(
            store,
            out,
            after=after,
            stream_prefix=stream_prefix,
            progress=advance,
            with_keys=with_keys,
        )
        out.flush()
    click.echo(f"Exported {plural(count, 'event')} from {display_url(store.url)}.", err=True)
    named = [op for op in store.operations() if op.archive_file] if not after else []
    if named and not stream_prefix:
        click.echo(
            f"The export names {plural(len(named), 'archive file')} of its operations log "
            f"(in {store.archive_dir}); import them with: import --archives DIR",
            err=True,
        )


@click.command("import")
@click.argument("file", type=click.File("rb"), default="-")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Events per transaction.",
)
@click.option(
    "--archives",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A directory holding the archive files the export's operations name (the source's "
    "archive directory): copied into this store's, each checked against its digest.",
)
@pass_store(create=True)
def import_(store: EventStore, file: IO[bytes], batch_size: int, archives: Path | None) -> None:
    """Import an export file (or stdin) into the store, exactly as exported.

    Every event keeps its id, stream version, recorded_at, bytes, tags, hash and (into an
    empty store) its position; every hash is checked against its chain first (an edited file
    is refused). A whole export also carries the stream lifecycle (operations log, removals,
    stream metadata), written first; its archive files come from --archives. Events already
    here, identical, are skipped: importing again is harmless, and finishes an import that
    was cut short. A batch with a refused event is not written at all.

    \b
    Examples:
      eventkeep --store postgresql://app@db/app import log.jsonl --archives ./app.db-archives
      eventkeep export | eventkeep --store sqlite:///copy.db import -
    """
    given = getattr(file, "name", "<stdin>")
    name = "stdin" if given in ("<stdin>", "-") else str(given)
    with progress_bar("importing", None) as advance:

        def show(report: ImportReport) -> None:
            advance(report.written + report.skipped)

        def size(header: ExportHeader) -> None:
            if header.stream_prefix is None:  # else the header cannot say how many
                advance(0, max(header.head_position - header.after, 0))

        done = import_file(
            store,
            file,
            name=name,
            batch_size=batch_size,
            on_batch=show,
            on_header=size,
            archives=archives,
        )
    click.echo(
        f"Imported {plural(done.written, 'event')} into {display_url(store.url)} "
        f"({done.skipped} already there)."
    )
    if done.archives is not None:
        taken = done.archives
        click.echo(
            f"Archive files: {taken.copied} copied, {taken.present} already there"
            + (f", {len(taken.missing)} not in {archives}." if taken.missing else ".")
        )
    if not done.complete:
        fail(
            f"{name} ends without its end line: the export was cut short. What it held is "
            "imported; import the complete export to finish (events already here are skipped)",
            EXIT_FAILED,
        )


def _open(url: str, *, create: bool, copying_into: bool = False) -> EventStore:
    """A store named on the command line (not --store): a source must exist. The target of
    a copy may be in the middle of the bulk load an interrupted copy left (PostgreSQL)."""
    scheme, _, rest = url.partition("://")
    if not create and scheme.lower() == "sqlite":
        path = rest.partition("?")[0][1:]
        if path and path != ":memory:" and not Path(path).exists():
            fail(f"no event store at {display_url(url)}: {path} does not exist", EXIT_NOT_FOUND)
    options: dict[str, Any] = {}
    if scheme.lower() in ("postgresql", "postgres"):
        if not create:
            options["create"] = False
        if copying_into:
            options["allow_bulk_load"] = True
    return eventkeep.open_store(url, **options)


@click.command()
@click.argument("source_url", metavar="SRC_URL")
@click.argument("target_url", metavar="DST_URL")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Events per transaction of the destination.",
)
@click.pass_context
def copy(ctx: click.Context, source_url: str, target_url: str, batch_size: int) -> None:
    """Copy every event of SRC_URL into DST_URL, one to one, resumably.

    Events keep their ids, versions, positions, recorded_at, bytes, tags and hashes (verify
    passes on the copy); the stream lifecycle (operations log, removals, stream metadata) goes
    first, and the archive files too when both stores have an archive directory. Interrupted
    (even killed), the same command finishes the copy: it resumes after the destination's last
    event, which must be the source's event there. Into an empty PostgreSQL store, 10,000
    events or more are bulk loaded: its secondary indexes are built at the end (until then
    the store refuses to open; run the same command again to finish). Snapshots and
    projection checkpoints are not copied (docs/moving.md).

    \b
    Examples:
      eventkeep copy sqlite:///app.db postgresql://app@db/app
      eventkeep copy postgresql://app@db/app sqlite:///debug.db
    """
    ctx.meta["eventkeep.writes"] = True
    source = _open(source_url, create=False)
    ctx.call_on_close(source.close)
    target = _open(target_url, create=True, copying_into=True)
    ctx.call_on_close(target.close)
    after = resume_position(source, target)
    total = max(source.head_position() - after, 0)  # positions: removed ones count too
    with progress_bar("copying", total) as advance:

        def show(report: ImportReport) -> None:
            advance(report.written + report.skipped)

        report = copy_store(source, target, batch_size=batch_size, on_batch=show)
    resumed = f", resumed after position {report.resumed_after}" if report.resumed_after else ""
    click.echo(
        f"Copied {plural(report.written, 'event')} from {display_url(source.url)} to "
        f"{display_url(target.url)}{resumed}; the copy holds the source up to position "
        f"{report.source_head}"
        + (
            f"; {plural(report.archives_copied, 'archive file')} copied."
            if report.archives_copied
            else "."
        )
    )


@click.command()
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--verify", "check", is_flag=True, help="Verify the backup once it is written.")
@pass_store()
def backup(store: EventStore, destination: Path, check: bool) -> None:
    """Back up a SQLite store to DESTINATION (a new file) while writers go on.

    SQLite's online backup API copies the database in one read transaction: the backup holds
    exactly what was committed when it began. On PostgreSQL this command only says what to run
    instead (pg_dump; docs/moving.md).

    \b
    Examples:
      eventkeep --store sqlite:///app.db backup /backups/app-2026-11-29.db --verify
    """
    schema = getattr(store, "schema", None)
    if schema is not None:
        hint = PG_DUMP_HINT.format(schema=schema, url=display_url(store.url).split("?")[0])
        fail(
            "eventkeep backup copies SQLite files; back up a PostgreSQL store with pg_dump: "
            + hint,
            EXIT_USAGE,
        )
    path = backup_sqlite(store, destination)
    click.echo(f"Backed up {display_url(store.url)} to {path}.")
    if check:
        with eventkeep.open_store(f"sqlite:///{path.resolve()}") as copy:
            report = copy.verify()
        if not report.ok:
            fail(f"the backup {path} does not verify: {report.broken or report.problems}")
        click.echo(f"Verified: {plural(report.events_checked, 'event')}, intact.")
