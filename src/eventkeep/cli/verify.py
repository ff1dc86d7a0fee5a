"""``eventkeep verify``: check the stored history (hash chains, stream heads, positions, the
database itself) and, with ``--anchor``, that it is exactly the anchored one."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from eventkeep import EventStore, VerifyReport
from eventkeep.cli._common import (
    EXIT_FAILED,
    console,
    fail,
    json_option,
    pass_store,
    plural,
    print_json,
    progress_bar,
)

__all__ = ["verify"]


@click.command()
@click.option(
    "--quick",
    is_flag=True,
    help=(
        "Skip the check of the database's own structures (SQLite integrity_check, PostgreSQL "
        "amcheck), which reads every page; the chains, heads and positions are still checked."
    ),
)
@click.option(
    "--anchor",
    "anchor_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also prove that the store holds exactly the history this anchor states.",
)
@click.option(
    "--trusted",
    "trusted_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --anchor: an earlier anchor already checked, from which to start.",
)
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=(
        "With --anchor: the key the anchor was signed with (for Ed25519, the public key "
        "suffices). Default: the $EVENTKEEP_ANCHOR_KEY environment variable."
    ),
)
@json_option
@pass_store()
def verify(
    store: EventStore,
    quick: bool,
    anchor_file: Path | None,
    trusted_file: Path | None,
    key_file: Path | None,
    as_json: bool,
) -> None:
    """Check the stored history: is it intact?

    Checks every stream's hash chain, every stream head against its chain, that positions
    increase with versions within each stream, and (unless --quick) the database's own
    structures. With --anchor FILE, also proves that the history up to the anchor's position
    is exactly the anchored one: a recomputed chain, a deleted stream or event, a moved head,
    reordered positions or a replaced database are found only this way (docs/security.md).

    Exits 0 when all is intact, 1 when something is broken (listing the first broken link of
    each damaged stream, and any other problem), and 2 when the anchor is malformed or not
    signed by the key. With --json, prints {ok, events_checked, streams_checked, broken:
    [{stream_id, version, position, reason}], problems, checked, not_checked}.

    \b
    Examples:
      eventkeep verify
      eventkeep verify --quick --json
      eventkeep verify --anchor anchors/2026-01-01.json --key-file anchor.pem.pub
    """
    from eventkeep.cli.anchor import load_anchor_file, load_cli_key

    if trusted_file is not None and anchor_file is None:
        fail("--trusted needs --anchor", 2)
    anchor = None if anchor_file is None else load_anchor_file(anchor_file)
    trusted = None if trusted_file is None else load_anchor_file(trusted_file)
    key = None if anchor is None else load_cli_key(key_file)
    with progress_bar("verifying the hash chains", None) as advance:
        report = store.verify(
            deep=not quick, anchor=anchor, key=key, trusted=trusted, progress=advance
        )
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "events_checked": report.events_checked,
                "streams_checked": report.streams_checked,
                "broken": [link._asdict() for link in report.broken],
                "problems": list(report.problems),
                "checked": list(report.checked),
                "not_checked": list(report.not_checked),
            }
        )
    else:
        _print(report)
    if not report.ok:
        found = []
        if report.broken:
            found.append(plural(len(report.broken), "broken hash chain"))
        if report.problems:
            found.append(plural(len(report.problems), "other problem"))
        fail(
            f"verify found {' and '.join(found)} "
            f"({plural(report.events_checked, 'event')} in "
            f"{plural(report.streams_checked, 'stream')} checked)",
            EXIT_FAILED,
        )


def _print(report: VerifyReport) -> None:
    out = console()
    if report.ok:
        out.print(
            f"All clear: {plural(report.events_checked, 'event')} in "
            f"{plural(report.streams_checked, 'stream')} checked, every hash chain is intact."
        )
    if report.broken:
        table = Table(title="broken hash chains")
        table.title_justify = "left"
        table.add_column("Stream", overflow="fold")
        table.add_column("Version", justify="right", no_wrap=True)
        table.add_column("Position", justify="right", no_wrap=True)
        table.add_column("Problem", overflow="fold", ratio=1)
        for link in report.broken:
            position = "-" if link.position is None else str(link.position)
            table.add_row(Text(link.stream_id), str(link.version), position, Text(link.reason))
        out.print(table)
    for title, items in (
        ("Problems", report.problems),
        ("Checked", report.checked),
        ("Not checked", report.not_checked),
    ):
        if items:
            out.print(f"{title}:")
            for item in items:
                out.print(Text(f"  - {item}"))
