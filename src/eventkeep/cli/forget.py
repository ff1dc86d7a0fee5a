"""``eventkeep forget``: erase a data subject's personal data (crypto-shredding)."""

from __future__ import annotations

import click

from eventkeep import EventStore
from eventkeep.cli._common import console, json_option, pass_store, plural, print_json
from eventkeep.projections.checkpoints import operator_name

__all__ = ["forget", "forgotten"]


@click.command(short_help="Forget a data subject: destroy its key (GDPR erasure).")
@click.argument("subject")
@click.option("--reason", default="", help="Why (kept in the forget log, e.g. a ticket id).")
@click.option("--by", "by", default=None, help="Who asks (default: user@host).")
@json_option
@pass_store(writes=True)
def forget(store: EventStore, subject: str, reason: str, by: str | None, as_json: bool) -> None:
    """Destroy SUBJECT's key: its personal fields read as redacted everywhere from now on.

    The events, their hashes and anchors stay valid (they hold the ciphertext). The forget is
    recorded in the store's forget log (who, when, why; never the data); snapshots of the
    streams holding SUBJECT's data are deleted; projection runners call the read models'
    forgotten hooks. Backups and copies made before still hold the key: see docs/erasure.md.
    Forgetting an unknown subject, or one forgotten before, is recorded and says so.

    \b
    Examples:
      eventkeep forget customer-42 --reason "GDPR request 2026-118"
      eventkeep --store sqlite:///app.db forget customer-42 --json
    """
    report = store.forget(subject, by=by if by is not None else operator_name(), reason=reason)
    if as_json:
        entry = report.entry
        print_json(
            {
                "subject": report.subject,
                "had_key": report.had_key,
                "seq": entry.seq,
                "forgotten_at": entry.forgotten_at.isoformat(),
                "by": entry.by,
                "reason": entry.reason,
                "snapshots_deleted": report.snapshots_deleted,
                "forgotten_before": [e.forgotten_at.isoformat() for e in report.earlier],
            }
        )
        return
    out = console()
    if report.had_key:
        out.print(f"Forgot {subject}: its key is destroyed; its personal fields read as redacted.")
    elif report.earlier:
        first = report.earlier[0]
        out.print(
            f"{subject} was already forgotten (at {first.forgotten_at:%Y-%m-%d %H:%M:%S} UTC "
            f"by {first.by or 'unknown'}); nothing left to destroy."
        )
    else:
        out.print(
            f"No key for {subject}: no personal data of it is stored (nothing to destroy). "
            "Recorded all the same."
        )
    if report.snapshots_deleted:
        out.print(f"Deleted {plural(report.snapshots_deleted, 'snapshot')} holding its data.")
    out.print(f"Forget log entry {report.entry.seq} (by {report.entry.by}).")


@click.command(short_help="List the forget log: which subjects were forgotten, when, by whom.")
@json_option
@pass_store()
def forgotten(store: EventStore, as_json: bool) -> None:
    """List every forget: subject id, time, who asked and why (never the data).

    \b
    Examples:
      eventkeep forgotten
      eventkeep forgotten --json
    """
    entries = store.forgotten_subjects()
    if as_json:
        print_json([{**e._asdict(), "forgotten_at": e.forgotten_at.isoformat()} for e in entries])
        return
    if not entries:
        click.echo("Nothing has been forgotten in this store.")
        return
    from rich.table import Table

    table = Table("Seq", "Subject", "Forgotten at (UTC)", "By", "Reason", "Key destroyed")
    for e in entries:
        table.add_row(
            str(e.seq),
            e.subject,
            f"{e.forgotten_at:%Y-%m-%d %H:%M:%S}",
            e.by,
            e.reason,
            "yes" if e.had_key else "no (none)",
        )
    console().print(table)
