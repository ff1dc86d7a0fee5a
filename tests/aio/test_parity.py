"""The asyncio API has every public method of the synchronous store, with the same
parameters: a method added to ``EventStore`` without its awaited form fails here."""

from __future__ import annotations

import inspect

from eventkeep.aio import AsyncEventStore
from eventkeep.store import EventStore

SYNC_ONLY = {"on_append"}
"""A hook whose callbacks run on the appending thread: the async store uses it itself."""


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_every_public_method_of_the_store_has_an_async_form_with_the_same_parameters() -> None:
    sync = public_methods(EventStore)
    aio = public_methods(AsyncEventStore)
    assert set(sync) - set(aio) == SYNC_ONLY
    for name in sorted(set(sync) - SYNC_ONLY):
        expected = [(p.name, p.kind, p.default) for p in sync[name].parameters.values()]
        found = [(p.name, p.kind, p.default) for p in aio[name].parameters.values()]
        assert found == expected, name


def test_the_lifecycle_erasure_and_moving_methods_are_there_and_awaited() -> None:
    for name in (
        "delete_stream",
        "set_retention",
        "retention",
        "compact",
        "truncate",
        "archive",
        "operations",
        "removals",
        "first_version",
        "deletion",
        "forget",
        "forgotten_subjects",
        "import_",
    ):
        assert inspect.iscoroutinefunction(getattr(AsyncEventStore, name)), name
    assert not inspect.iscoroutinefunction(AsyncEventStore.export)  # an async iterator
    assert isinstance(AsyncEventStore.archive_dir, property)
    assert isinstance(AsyncEventStore.key_store, property)
