"""``eventkeep projections``: run projections, and show, rebuild, reset or unblock them."""

from __future__ import annotations

import importlib
import logging
import sys

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from eventkeep import EventStore
from eventkeep.cli._common import EXIT_USAGE, console, fail, json_option, pass_store, print_json
from eventkeep.projections import (
    Projection,
    Runner,
    projection_status,
    request_rebuild,
    reset_projection,
    retry_projection,
    skip_event,
)
from eventkeep.projections.checkpoints import lease_free, load_record, now_us

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
      eventkeep projections rebuild eventkeep.examples.bank.readmodels:AccountBalances
      eventkeep projections skip bank.account_balances 1234 --reason "bad amount, ticket 42"
      eventkeep projections reset bank.account_balances --yes
    """


def load_projection(target: str) -> Projection:
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        fail(f"{target!r}: give a projection as module:attribute", EXIT_USAGE)
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
    runner.run(until_caught_up=until_caught_up)


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
        print_json([row._asdict() for row in rows])
        return
    table = Table("Projection", "State", "Ver", "Position", "Lag", "Lag s", "Error")
    for row in rows:
        state = row.state
        if row.rebuild_progress is not None:
            state += f" {row.rebuild_progress:.0%}"
        error = row.error or ""
        if row.failing_position is not None:
            error = f"at {row.failing_position} (try {row.retries}): {error}"
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
@pass_store(writes=True)
def skip(store: EventStore, name: str, position: int, reason: str) -> None:
    """Skip the event a failed projection is stuck on: logged, and kept in its record.

    \b
    Examples:
      eventkeep projections skip bank.account_balances 1234 --reason "ticket 42"
    """
    skip_event(store, name, position, reason=reason)
    click.echo(f"{name}: the event at position {position} is skipped ({reason}).")


@projections.command(short_help="Retry a failed projection now.")
@click.argument("name")
@pass_store(writes=True)
def retry(store: EventStore, name: str) -> None:
    """Let a failed projection retry at once, even after its retry policy gave up."""
    retry_projection(store, name)
    click.echo(f"{name}: retrying.")
