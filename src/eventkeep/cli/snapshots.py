"""``eventkeep snapshots``: rebuild or delete the aggregate snapshots of a category."""

from __future__ import annotations

import importlib
import os
import sys

import click

from eventkeep import EventStore, Repository
from eventkeep.cli._common import (
    EXIT_USAGE,
    console,
    fail,
    json_option,
    pass_store,
    plural,
    print_json,
)
from eventkeep.domain.aggregate import check_category, snapshot_aggregate_for, snapshot_categories

__all__ = ["snapshots"]


@click.group(short_help="Rebuild or delete the snapshots of an aggregate category.")
def snapshots() -> None:
    """Aggregate snapshots: a cache of state beside the events, which shortens loads.

    Snapshots can be deleted and rebuilt at any time; the events are the truth.

    \b
    Examples:
      eventkeep snapshots rebuild bankaccount --import eventkeep.examples.bank
      eventkeep snapshots delete bankaccount
    """


@snapshots.command()
@click.argument("category")
@click.option(
    "--import",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="Import MODULE first: where the aggregate class of CATEGORY is defined (repeatable; "
    "the current directory is importable).",
)
@json_option
@pass_store(writes=True)
def rebuild(store: EventStore, category: str, modules: tuple[str, ...], as_json: bool) -> None:
    """Delete the snapshots of CATEGORY's streams and write fresh ones from their events.

    The aggregate type is the one with a snapshot policy whose category is CATEGORY (streams
    CATEGORY-<id>), found among the classes defined by the --import modules. With --json,
    prints {category, streams, written, deleted}.

    \b
    Examples:
      eventkeep snapshots rebuild bankaccount --import eventkeep.examples.bank
      eventkeep --store sqlite:///app.db snapshots rebuild order --import myapp.domain --json
    """
    _import_all(modules)
    check_category(category, what="category")
    aggregate = snapshot_aggregate_for(category)
    if aggregate is None:
        known = ", ".join(snapshot_categories()) or "none"
        fail(
            f"no aggregate type with a snapshot policy is defined for the category {category!r} "
            f"(defined: {known}); pass --import with the module that defines it",
            EXIT_USAGE,
        )
    report = Repository(store, aggregate).rebuild_snapshots()
    if as_json:
        print_json(report._asdict())
        return
    console().print(
        f"Rebuilt the snapshots of {category}: {plural(report.streams, 'stream')} read, "
        f"{plural(report.written, 'snapshot')} written, {report.deleted} old deleted."
    )


@snapshots.command()
@click.argument("category")
@json_option
@pass_store(writes=True)
def delete(store: EventStore, category: str, as_json: bool) -> None:
    """Delete the snapshots of CATEGORY's streams (CATEGORY-<id>).

    Loads replay the events until new snapshots are written. With --json, prints
    {category, deleted}.

    \b
    Examples:
      eventkeep snapshots delete bankaccount
    """
    check_category(category, what="category")
    deleted = store.delete_snapshots(f"{category}-")
    if as_json:
        print_json({"category": category, "deleted": deleted})
    else:
        console().print(f"Deleted {plural(deleted, 'snapshot')} of {category}.")


def _import_all(modules: tuple[str, ...]) -> None:
    if modules and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            fail(f"cannot import {name}: {exc}", EXIT_USAGE)
