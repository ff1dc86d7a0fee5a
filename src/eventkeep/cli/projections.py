"""``eventkeep projections``: run projections, and show, rebuild, reset or unblock them."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eventkeep import EventStore
from eventkeep.cli._common import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    console,
    fail,
    json_option,
    pass_store,
    plural,
    print_json,
)
from eventkeep.projections import (
    Projection,
    Runner,
    discard_parked,
    parked_events,
    projection_status,
    replay_parked,
    request_rebuild,
    reset_projection,
    retry_projection,
    skip_event,
)
from eventkeep.projections.checkpoints import ProjectionStatus, lease_free, load_record, now_us

__all__ = ["projections"]

ttl_option = click.option(
    "--lease-ttl",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds a runner's lease lasts without renewal; a standby takes over after it.",
)


@click.group(short_help="Run projections; show their status; rebuild, reset or skip.")
def projections() -> None:
    """Projections: read models and reactors fed from the global log.

    A projection is given as module:attribute, a Projection class or instance, e.g.
    eventkeep.examples.bank.readmodels:AccountBalances.

    \b
    Examples:
      eventkeep projections run eventkeep.examples.bank.readmodels:AccountBalances
      eventkeep projections status
      eventkeep projections show bank.account_balances --limit 20
      eventkeep projections rebuild eventkeep.examples.bank.readmodels:AccountBalances
      eventkeep projections skip bank.account_balances 1234 --reason "bad amount, ticket 42"
      eventkeep projections reset bank.account_balances --yes
    """


def load_projection(target: str) -> Projection:
    """``module:attribute`` -> a Projection; the current directory is importable (like
    ``snapshots rebuild --import``), so ``shop:CartTotals`` finds ``./shop.py``."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        fail(f"{target!r}: give a projection as module:attribute", EXIT_USAGE)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        fail(f"{target!r}: cannot import {module_name} ({exc})", EXIT_USAGE)
    value = getattr(module, attribute, None)
    if isinstance(value, type) and issubclass(value, Projection):
        value = value()
    if not isinstance(value, Projection):
        fail(f"{target!r} is not a Projection class or instance", EXIT_USAGE)
    return value


@projections.command(short_help="Run projections as a long-lived worker.")
@click.argument("targets", nargs=-1, required=True, metavar="MODULE:PROJECTION...")
@ttl_option
@click.option("--until-caught-up", is_flag=True, help="Exit once every projection is caught up.")
@click.option("--quiet", is_flag=True, help="Log warnings and errors only.")
@pass_store(create=True)
def run(
    store: EventStore,
    targets: tuple[str, ...],
    lease_ttl: float,
    until_caught_up: bool,
    quiet: bool,
) -> None:
    """Run projections until SIGTERM (or Ctrl-C): the current batch is finished, checkpoints
    are saved and leases released. Only one runner per projection is active; start another
    one anywhere as a standby: it takes over when the active one stops or dies.

    \b
    Examples:
      eventkeep projections run eventkeep.examples.bank.readmodels:AccountBalances \\
          eventkeep.examples.bank.transfers:TransferProcessor
      eventkeep projections run shop:CartTotals --until-caught-up   # ./shop.py

    With --until-caught-up it exits once every projection is caught up (status 0) or failed
    (status 1, naming the failing event). A second SIGTERM or Ctrl-C while it finishes a batch
    exits at once with status 128 + the signal number (130 for Ctrl-C).
    """
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    runner = Runner(store, [load_projection(t) for t in targets], lease_ttl=lease_ttl)
    runner.install_signal_handlers()
    names = ", ".join(job.name for job in runner.jobs)
    logging.getLogger("eventkeep.projections").info("runner %s: %s", runner.owner, names)
    if not until_caught_up:
        runner.run()
        return
    # Done once each projection is caught up or failed: a failure is an exit status of 1.
    runner.run(until_caught_up=True, stop_on_failure=True)
    if runner.stopping:
        return
    failed = [job.record for job in runner.jobs if job.name in runner.failed()]
    if failed:
        fail(
            "; ".join(
                f"{r.name} failed at position {r.failing_position}: {r.error}"
                for r in failed
                if r is not None
            ),
            EXIT_FAILED,
        )


@projections.command(short_help="Position, lag, state and last error of every projection.")
@click.argument("name", required=False)
@json_option
@pass_store()
def status(store: EventStore, name: str | None, as_json: bool) -> None:
    """Show each projection's position, lag (events and seconds), state and last error.

    \b
    Examples:
      eventkeep projections status
      eventkeep projections status bank.account_balances --json
    """
    rows = projection_status(store, name)
    if as_json:
        print_json([_status_json(row) for row in rows])
        return
    table = Table("Projection", "State", "Ver", "Position", "Lag", "Lag s", "Error")
    for row in rows:
        state = row.state
        if row.rebuild_progress is not None:
            state += f" {row.rebuild_progress:.0%}"
        error = row.error or ""
        if row.failing_position is not None:
            error = f"at {row.failing_position} (try {row.retries}): {error}"
        if row.parked:
            parked = f"{row.parked} parked"
            error = f"{error}; {parked}" if error else parked
        if row.skips:
            last = row.skips[-1]
            skipped = (
                f"{len(row.skips)} skipped (last: {last.position} by {last.by}: {last.reason})"
            )
            error = f"{error}; {skipped}" if error else skipped
        if row.forgotten:
            names = ", ".join(row.forgotten[:5]) + (" ..." if len(row.forgotten) > 5 else "")
            forgot = f"forgotten since its last rebuild: {names}"
            error = f"{error}; {forgot}" if error else forgot
        table.add_row(
            row.name,
            state,
            str(row.version),
            str(row.position),
            str(row.lag_events),
            f"{row.lag_seconds:.1f}",
            error,
        )
    console().print(table)
    if not rows:
        click.echo("No projection has run on this store yet.")
    elif rows[0].replica is not None:
        lag = rows[0].replica
        click.echo(
            f"Reading from the replica {lag.read_url}: {plural(lag.positions_behind, 'position')}, "
            f"{lag.bytes_behind:,} bytes of WAL and {lag.seconds_behind:.1f} s behind the "
            f"primary (head {lag.primary_head}, replica head {lag.replica_head})"
            + ("" if lag.in_recovery else "; that server is not a standby")
        )


def _status_json(row: ProjectionStatus) -> dict[str, Any]:
    out = row._asdict()
    out["replica"] = None if row.replica is None else row.replica._asdict()
    return out


@projections.command(short_help="Rebuild a projection by replay, without downtime.")
@click.argument("target", metavar="MODULE:PROJECTION")
@ttl_option
@pass_store(writes=True)
def rebuild(store: EventStore, target: str, lease_ttl: float) -> None:
    """Replay the log into a fresh copy of the read model, then swap it in.

    SQL read models are rebuilt into new tables while readers keep the old ones. If a runner
    holds the projection, it is asked to rebuild; otherwise the rebuild runs here, with a
    progress bar.

    \b
    Examples:
      eventkeep projections rebuild eventkeep.examples.bank.readmodels:AccountBalances
    """
    projection = load_projection(target)
    with store.transaction() as tx:
        record = load_record(tx, projection.name)
    if record is not None and not lease_free(record, now_us()):
        request_rebuild(store, projection.name)
        click.echo(f"Rebuild of {projection.name} requested from its runner {record.owner}.")
        return
    if record is not None:
        request_rebuild(store, projection.name)
    runner = Runner(store, [projection], lease_ttl=lease_ttl)
    job = runner.jobs[0]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console()) as progress:
        task = progress.add_task(f"rebuilding {projection.name}", total=None)

        def show() -> None:
            total = job.record.rebuild_target if job.record and job.rebuilding else None
            progress.update(task, completed=job.checkpoint, total=total or job.checkpoint or 1)

        done = runner.run(
            until=lambda: job.active and job.caught_up and not job.rebuilding, on_step=show
        )
    if not done or job.record is None:
        fail(f"the rebuild of {projection.name} did not finish")
    click.echo(
        f"{projection.name} rebuilt: version {job.record.version}, "
        f"generation {job.record.generation}, position {job.checkpoint}."
    )


@projections.command(short_help="Forget a projection: drop its read model and checkpoint.")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Even while a runner holds the projection.")
@pass_store(writes=True)
def reset(store: EventStore, name: str, yes: bool, force: bool) -> None:
    """Drop a projection's tables, checkpoint and status; the next run starts from scratch.

    \b
    Examples:
      eventkeep projections reset bank.account_balances --yes
    """
    if not yes:
        click.confirm(f"Drop the read model and checkpoint of {name}?", abort=True)
    reset_projection(store, name, force=force)
    click.echo(f"{name} reset: it starts from the beginning of the log on its next run.")


@projections.command(short_help="Skip the poison event a failed projection is stuck on.")
@click.argument("name")
@click.argument("position", type=click.IntRange(min=1))
@click.option("--reason", required=True, help="Why it is skipped (kept in the record).")
@click.option("--by", default=None, help="Who skips it (kept in the record; default user@host).")
@pass_store(writes=True)
def skip(store: EventStore, name: str, position: int, reason: str, by: str | None) -> None:
    """Skip the event a failed projection is stuck on: logged, and kept in its record.

    Only that one event is passed over: the runner has committed every event before it.

    \b
    Examples:
      eventkeep projections skip bank.account_balances 1234 --reason "ticket 42"
    """
    skip_event(store, name, position, reason=reason, by=by)
    click.echo(f"{name}: the event at position {position} is skipped ({reason}).")


@projections.command(short_help="Retry a failed projection now.")
@click.argument("name")
@pass_store(writes=True)
def retry(store: EventStore, name: str) -> None:
    """Let a failed projection retry at once, even after its retry policy gave up."""
    retry_projection(store, name)
    click.echo(f"{name}: retrying.")


@projections.command(short_help="Print a SQL read model's rows.")
@click.argument("name")
@click.option("--table", "table_name", default=None, help="Which table (default: the first).")
@click.option(
    "--limit", type=click.IntRange(min=0), default=50, show_default=True, help="Most rows."
)
@json_option
@pass_store()
def show(store: EventStore, name: str, table_name: str | None, limit: int, as_json: bool) -> None:
    """Print the rows of a projection's SQL read model, as readers see them (its view).

    \b
    Examples:
      eventkeep projections show bank.account_balances
      eventkeep projections show bank.daily_transactions --limit 10 --json
    """
    with store.transaction() as tx:
        record = load_record(tx, name)
    if record is None:
        fail(f"no projection named {name!r} has run on {store.url}", EXIT_NOT_FOUND)
    if not record.tables:
        fail(f"projection {name!r} has no SQL read model (no tables)", EXIT_USAGE)
    table_name = table_name or record.tables[0]
    if table_name not in record.tables:
        fail(
            f"projection {name!r} has no table {table_name!r} (it has {record.tables})", EXIT_USAGE
        )
    columns, rows = read_model_rows(store, table_name, limit)
    if as_json:
        print_json([dict(zip(columns, row, strict=True)) for row in rows])
        return
    table = Table(*columns, title=f"{name}: {table_name}")
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    console().print(table)
    click.echo(f"{len(rows)} row{'' if len(rows) == 1 else 's'} shown (--limit {limit}).")


def read_model_rows(
    store: EventStore, table: str, limit: int
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and first ``limit`` rows of a read model's view (a name the record
    holds, checked as an identifier when the projection was defined)."""
    with store.transaction() as tx:
        cursor = tx.connection.execute(f"SELECT * FROM {table} LIMIT {int(limit)}")
        columns = [str(column[0]) for column in cursor.description]
        rows = [tuple(row) for row in cursor.fetchall()]
    return columns, rows


@projections.command(short_help="List the events a projection has parked.")
@click.argument("name")
@json_option
@pass_store()
def parked(store: EventStore, name: str, as_json: bool) -> None:
    """List the events a projection with park_failures has set aside, with their errors.

    \b
    Examples:
      eventkeep projections parked shop.orders --json
    """
    rows = parked_events(store, name)
    if as_json:
        print_json(rows)
        return
    table = Table("Position", "Stream", "Type", "Attempts", "Error", title=f"{name}: parked")
    for row in rows:
        table.add_row(str(row.position), row.stream_id, row.type, str(row.attempts), row.error)
    console().print(table)
    click.echo(f"{len(rows)} parked event{'' if len(rows) == 1 else 's'}.")


@projections.command("replay-parked", short_help="Handle parked events again.")
@click.argument("name")
@click.argument("positions", nargs=-1, type=click.IntRange(min=1))
@pass_store(writes=True)
def replay_parked_command(store: EventStore, name: str, positions: tuple[int, ...]) -> None:
    """Ask the projection's runner to handle its parked events again (all, or POSITIONS), in
    position order: those that succeed leave the list.

    \b
    Examples:
      eventkeep projections replay-parked shop.orders
      eventkeep projections replay-parked shop.orders 1234 1240
    """
    count = replay_parked(store, name, list(positions) or None)
    click.echo(f"{name}: replay of {count} parked events requested from its runner.")


@projections.command("discard-parked", short_help="Give up on parked events (kept as skips).")
@click.argument("name")
@click.argument("positions", nargs=-1, type=click.IntRange(min=1))
@click.option("--all", "every", is_flag=True, help="Every parked event.")
@click.option("--reason", required=True, help="Why (kept in the record).")
@click.option("--by", default=None, help="Who (kept in the record; default user@host).")
@pass_store(writes=True)
def discard_parked_command(
    store: EventStore,
    name: str,
    positions: tuple[int, ...],
    every: bool,
    reason: str,
    by: str | None,
) -> None:
    """Remove parked events from the list; each is recorded as a skip (who, why, when).

    \b
    Examples:
      eventkeep projections discard-parked shop.orders 1234 --reason "test data"
      eventkeep projections discard-parked shop.orders --all --reason "ticket 9"
    """
    if bool(positions) == every:
        fail("give POSITIONS or --all", EXIT_USAGE)
    count = discard_parked(store, name, list(positions) or None, reason=reason, by=by)
    click.echo(f"{name}: {count} parked events discarded ({reason}).")
