"""Copying into an empty PostgreSQL store bulk loads it (eventkeep.backends.postgres.bulk):
its secondary indexes are dropped, then built again once the events are in, the streams'
heads written from the events. The copy is the same as an ordinary one in every field, and
the state in between is recorded, refused on open, and resumed. (The copy SIGKILLed midway
in bulk mode: tests/postgres/test_pg_moving_history.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest

import eventkeep
from eventkeep.moving import copy_store
from eventkeep.testing.contract_carry import lifecycle_state
from moving_helpers import fill, same_history
from pg_bulk_helpers import (
    SECONDARY,
    assert_bulk_load_finished,
    bulk_state,
    event_indexes,
)
from pg_fixtures import Target


def _source(tmp_path: Path, events: int) -> str:
    url = f"sqlite:///{tmp_path / 'source.db'}?archive_dir={tmp_path / 'archives'}"
    with eventkeep.open_store(url, synchronous="OFF") as source:
        fill(source, events, per_stream=7)
        source.append_events([eventkeep.NewEvent(eventkeep.RawEvent("Noted", {}), tags=["t"])])
    return url


def test_a_bulk_loaded_copy_is_the_source_event_for_event_with_its_heads_and_indexes(
    tmp_path: Path, target: Target
) -> None:
    source_url = _source(tmp_path, 3000)
    with eventkeep.open_store(source_url) as source, eventkeep.open_store(target.url) as copy:
        report = copy_store(source, copy, batch_size=250, bulk=True)
        assert (report.written, report.skipped) == (3001, 0)
        assert copy.verify().ok
        same_history(source, copy)
        assert [copy.stream_version(f"account-{n}") for n in range(0, 430, 43)] == [
            source.stream_version(f"account-{n}") for n in range(0, 430, 43)
        ]
        query = eventkeep.Query([eventkeep.QueryItem(tags=["account:3"])])
        assert [e.event_id for e in copy.read(query).events] == [
            e.event_id for e in source.read(query).events
        ]
        # The store is an ordinary one again: appends chain on the copied heads.
        copy.append("account-1", [eventkeep.RawEvent("Deposited", {"n": 1})], expected_version=7)
        with pytest.raises(eventkeep.ConcurrencyError):
            copy.append("account-2", [eventkeep.RawEvent("Deposited", {})], expected_version=6)
        assert copy.verify().ok
    assert_bulk_load_finished(target)


def test_a_bulk_load_carries_the_stream_lifecycle(tmp_path: Path, target: Target) -> None:
    source_url = _source(tmp_path, 2000)
    with eventkeep.open_store(source_url) as source:
        source.archive(before_position=300, by="test", reason="old log")
        source.truncate("account-100", 3, by="test")
        source.delete_stream("account-110", hard=True, by="test")
        source.delete_stream("account-120", by="test")
    copied = f"{target.url}&archive_dir={tmp_path / 'copied'}"
    with eventkeep.open_store(source_url) as source, eventkeep.open_store(copied) as copy:
        copy_store(source, copy, batch_size=300, bulk=True)
        assert lifecycle_state(copy) == lifecycle_state(source)
        assert copy.verify().ok
        same_history(source, copy)
    assert_bulk_load_finished(target)


def _indexes_while_copying(
    source: eventkeep.EventStore, copy: eventkeep.EventStore, target: Target, bulk: bool | None
) -> set[tuple[str, ...]]:
    seen: set[tuple[str, ...]] = set()
    copy_store(
        source,
        copy,
        batch_size=500,
        bulk=bulk,
        on_batch=lambda _: seen.add(tuple(event_indexes(target))),
    )
    return seen


def test_the_indexes_are_dropped_only_while_bulk_loading_an_empty_store(
    tmp_path: Path, target: Target
) -> None:
    every = tuple(sorted(["events_pkey", *SECONDARY]))
    source_url = _source(tmp_path, 3000)
    with eventkeep.open_store(source_url) as source:
        rows = list(source.export())
        with eventkeep.open_store(target.url) as copy:
            assert _indexes_while_copying(source, copy, target, bulk=True) == {("events_pkey",)}
        assert event_indexes(target) == list(every)
    with eventkeep.open_store(source_url) as source, eventkeep.open_store(f"{target.url}x") as copy:
        # Below BULK_LOAD_FROM events (None): an ordinary copy.
        assert _indexes_while_copying(source, copy, _other(target), bulk=None) == {every}
    with eventkeep.open_store(source_url) as source, eventkeep.open_store(f"{target.url}y") as copy:
        copy.import_(rows[:700])  # holds events already: resumed as an ordinary copy
        assert _indexes_while_copying(source, copy, _other(target, "y"), bulk=True) == {every}
        same_history(source, copy)


def _other(target: Target, suffix: str = "x") -> Target:
    return Target(target.server, target.schema + suffix)


def test_an_interrupted_bulk_load_is_resumed_by_the_next_copy_even_with_bulk_false(
    tmp_path: Path, target: Target
) -> None:
    """A copy that fails midway (here a damaged source event: the plan refuses its batch)
    leaves the load recorded; the copy run again (the source repaired) finishes it."""
    source_url = _source(tmp_path, 2000)
    with eventkeep.open_store(source_url) as source:
        rows = list(source.export())
    damaged = tmp_path / "damaged.db"
    with eventkeep.open_store(f"sqlite:///{damaged}") as store:
        store.import_(rows)
    import sqlite3

    with sqlite3.connect(damaged) as raw:
        raw.execute("DROP TRIGGER IF EXISTS events_refuse_update")
        names = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
        for name in names:
            raw.execute(f"DROP TRIGGER {name}")
        raw.execute("UPDATE events SET data = '{\"n\":-1}' WHERE position = 1500")
    with (
        eventkeep.open_store(f"sqlite:///{damaged}") as source,
        eventkeep.open_store(target.url) as copy,
        pytest.raises(eventkeep.IntegrityError, match="hash does not match"),
    ):
        copy_store(source, copy, batch_size=100, bulk=True)
    [(_, last_position)] = bulk_state(target)
    assert 1000 <= last_position < 1500
    assert event_indexes(target) == ["events_pkey"]
    with pytest.raises(eventkeep.IntegrityError, match="unfinished `eventkeep copy`"):
        eventkeep.open_store(target.url)
    with (
        eventkeep.open_store(source_url) as source,
        eventkeep.open_store(target.url, allow_bulk_load=True) as copy,
    ):
        report = copy_store(source, copy, batch_size=100, bulk=False)
        assert report.resumed_after == last_position
        assert copy.verify().ok
        same_history(source, copy)
    assert_bulk_load_finished(target)


def test_allow_bulk_load_must_be_a_bool(target: Target) -> None:
    with pytest.raises(eventkeep.ConfigurationError, match="allow_bulk_load"):
        eventkeep.open_store(target.url, allow_bulk_load="yes")


class Registered(eventkeep.Event):
    __event_type__ = "test.bulk.Registered"
    customer_id: str
    email: Annotated[str, eventkeep.Personal(subject="customer_id")]


def test_a_bulk_load_carries_the_keys_of_personal_data_page_by_page(
    tmp_path: Path, target: Target
) -> None:
    source_url = f"sqlite:///{tmp_path / 'personal.db'}"
    with eventkeep.open_store(source_url) as source:
        for n in range(600):
            source.append(f"customer-{n}", [Registered(str(n), f"p{n}@example.com")])
        source.forget("7", by="dpo")
    with eventkeep.open_store(source_url) as source, eventkeep.open_store(target.url) as copy:
        copy_store(source, copy, batch_size=100, bulk=True)
        emails = [e.event.email for e in copy.read_all()]  # type: ignore[union-attr]
        assert emails[:9] == [f"p{n}@example.com" if n != 7 else "[redacted]" for n in range(9)]
        assert emails[599] == "p599@example.com"
        assert [f.subject for f in copy.forgotten_subjects()] == ["7"]
        assert copy.verify().ok
    assert_bulk_load_finished(target)


class _Stop(Exception):
    pass


def test_the_finish_is_one_transaction_a_failed_one_leaves_the_load_to_run_again(
    tmp_path: Path, target: Target
) -> None:
    """A copy stopped midway leaves the load recorded; a finish that fails (here a statement
    of its own that cannot run, put into the record) builds nothing and leaves the record;
    the copy run again once it can finishes."""
    import psycopg

    source_url = _source(tmp_path, 2000)

    def stop_after_two(report: eventkeep.moving.ImportReport) -> None:
        if report.written >= 400:
            raise _Stop

    with (
        eventkeep.open_store(source_url) as source,
        eventkeep.open_store(target.url) as copy,
        pytest.raises(_Stop),
    ):
        copy_store(source, copy, batch_size=200, bulk=True, on_batch=stop_after_two)
    [(_, stopped_at)] = bulk_state(target)
    assert stopped_at >= 400
    record = f"{target.schema}.eventkeep_bulk_load"
    with psycopg.connect(target.base_url, autocommit=True) as conn:
        conn.execute(f"UPDATE {record} SET rebuild = rebuild || 'SELECT 1 / 0'::text")
    with (
        eventkeep.open_store(source_url) as source,
        eventkeep.open_store(target.url, allow_bulk_load=True) as copy,
        pytest.raises(eventkeep.EventkeepError, match="division by zero"),
    ):
        copy_store(source, copy, batch_size=200)
    assert event_indexes(target) == ["events_pkey"]  # the indexes built before: rolled back
    [(_, loaded)] = bulk_state(target)
    assert loaded == 2001
    with psycopg.connect(target.base_url, autocommit=True) as conn:
        conn.execute(f"UPDATE {record} SET rebuild = trim_array(rebuild, 1)")
    with (
        eventkeep.open_store(source_url) as source,
        eventkeep.open_store(target.url, allow_bulk_load=True) as copy,
    ):
        report = copy_store(source, copy, batch_size=200)
        assert report.written == 0
        assert copy.verify().ok
        same_history(source, copy)
    assert_bulk_load_finished(target)
