"""Moving history between SQLite and PostgreSQL: export then import SQLite -> PostgreSQL ->
SQLite with every field identical; ``eventkeep copy`` SIGKILLed midway (a real process, killed
when the destination holds part of the events), then run again to finish."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import eventkeep
from eventkeep.moving import copy_store, export_file, import_file
from eventkeep.testing.contract_carry import lifecycle_state, with_lifecycle
from moving_helpers import eventkeep_process, fill, kill_when, same_history
from pg_bulk_helpers import assert_bulk_load_finished, assert_bulk_load_left
from pg_fixtures import Target


def test_export_and_import_sqlite_to_postgres_to_sqlite_keep_every_byte_and_hash(
    tmp_path: Path, target: Target
) -> None:
    with (
        eventkeep.open_store(f"sqlite:///{tmp_path / 'first.db'}") as first,
        eventkeep.open_store(target.url) as middle,
        eventkeep.open_store(f"sqlite:///{tmp_path / 'last.db'}") as last,
    ):
        fill(first, 2500, per_stream=7)
        first.append_events([eventkeep.NewEvent(eventkeep.RawEvent("Noted", {}), tags=["t"])])
        for source, destination in ((first, middle), (middle, last)):
            out = io.BytesIO()
            export_file(source, out)
            done = import_file(destination, io.BytesIO(out.getvalue()), batch_size=400)
            assert done.complete
            assert (done.written, done.skipped) == (2501, 0)
            report = destination.verify()
            assert report.ok, report
            same_history(first, destination)
            again = import_file(destination, io.BytesIO(out.getvalue()))
            assert (again.written, again.skipped) == (0, 2501)
        query = eventkeep.Query([eventkeep.QueryItem(tags=["account:3"])])
        assert [e.event_id for e in last.read(query).events] == [
            e.event_id for e in first.read(query).events
        ]


def test_export_and_import_sqlite_to_postgres_to_sqlite_carry_the_stream_lifecycle(
    tmp_path: Path, target: Target
) -> None:
    """Soft- and hard-deleted, revived, truncated, compacted and log-archived streams, and a
    removed log tail: the operations log, removals, stream metadata and archive files go
    along, every position and field stays, and verify checks every archive on each store."""
    dirs = {name: tmp_path / f"{name}-archives" for name in ("first", "middle", "last")}
    with (
        eventkeep.open_store(
            f"sqlite:///{tmp_path / 'first.db'}", archive_dir=dirs["first"]
        ) as first,
        eventkeep.open_store(target.url, archive_dir=dirs["middle"]) as middle,
        eventkeep.open_store(f"sqlite:///{tmp_path / 'last.db'}", archive_dir=dirs["last"]) as last,
    ):
        fill(first, 300, per_stream=7)
        with_lifecycle(first)
        expected = lifecycle_state(first)
        archives = [op.archive_file for op in first.operations() if op.archive_file]
        assert len(archives) >= 5
        for (source, from_dir), destination in (
            ((first, dirs["first"]), middle),
            ((middle, dirs["middle"]), last),
        ):
            out = io.BytesIO()
            export_file(source, out)
            done = import_file(
                destination, io.BytesIO(out.getvalue()), batch_size=64, archives=from_dir
            )
            assert done.complete
            assert done.archives is not None
            assert done.archives.copied == len(archives)
            assert lifecycle_state(destination) == expected
            report = destination.verify()
            assert report.ok, report
            assert sum("sha256 matches the log" in line for line in report.checked) == len(archives)
            again = import_file(destination, io.BytesIO(out.getvalue()), archives=from_dir)
            assert (again.written, again.archives) == (0, (0, len(archives), ()))
            assert lifecycle_state(destination) == expected
        assert [e.version for e in last.read_stream("trunc-1", archived=True)] == [1, 2, 3, 4]
        appended = last.append("trunc-1", [eventkeep.RawEvent("Noted", {})], expected_version=4)
        assert appended.positions == (expected["head"] + 1,)
        assert last.verify().ok


def test_copy_carries_the_stream_lifecycle_sqlite_to_postgres_to_sqlite(
    tmp_path: Path, target: Target
) -> None:
    with (
        eventkeep.open_store(
            f"sqlite:///{tmp_path / 'first.db'}", archive_dir=tmp_path / "a1"
        ) as first,
        eventkeep.open_store(target.url, archive_dir=tmp_path / "a2") as middle,
        eventkeep.open_store(
            f"sqlite:///{tmp_path / 'last.db'}", archive_dir=tmp_path / "a3"
        ) as last,
    ):
        fill(first, 200, per_stream=9)
        with_lifecycle(first)
        expected = lifecycle_state(first)
        for source, destination in ((first, middle), (middle, last)):
            report = copy_store(source, destination, batch_size=50)
            assert report.archives_copied == len(
                [op for op in first.operations() if op.archive_file]
            )
            assert lifecycle_state(destination) == expected
            checked = destination.verify()
            assert checked.ok, checked
            assert not [line for line in checked.not_checked if "archive" in line]
            assert copy_store(source, destination).written == 0


def test_a_tampered_export_is_refused_by_postgres(tmp_path: Path, target: Target) -> None:
    with (
        eventkeep.open_store(f"sqlite:///{tmp_path / 'src.db'}") as source,
        eventkeep.open_store(target.url) as destination,
    ):
        fill(source, 30)
        out = io.BytesIO()
        export_file(source, out)
        edited = out.getvalue().replace(b'"amount":"4.50"', b'"amount":"400.50"', 1)
        assert edited != out.getvalue()
        with pytest.raises(eventkeep.IntegrityError, match="hash does not match"):
            import_file(destination, io.BytesIO(edited))
        assert destination.head_position() == 0


def _killed_and_resumed(
    source_url: str, target_url: str, total: int, bulk: Target | None = None
) -> None:
    """Copy, SIGKILL the copy midway, copy again: the copy is whole and verifies. ``bulk``:
    the target is an empty PostgreSQL store, which the copy bulk loads: killed, it refuses a
    normal open and lacks its secondary indexes, yet refuses UPDATE and DELETE as always; the
    copy run again builds them."""
    with eventkeep.open_store(target_url) as watched:
        process = eventkeep_process("copy", source_url, target_url, "--batch-size", "200")
        held = kill_when(process, watched, total // 10, total // 2)
        assert 0 < held < total
    if bulk is not None:
        assert_bulk_load_left(bulk, held)
    finished = eventkeep_process("copy", source_url, target_url, "--batch-size", "200")
    out, err = finished.communicate(timeout=300)
    assert finished.returncode == 0, err
    assert f"resumed after position {held}" in out
    with eventkeep.open_store(source_url) as source, eventkeep.open_store(target_url) as copy:
        report = copy.verify()
        assert report.ok, report
        same_history(source, copy)


def test_copy_sqlite_to_postgres_killed_midway_is_finished_by_running_it_again(
    tmp_path: Path, target: Target
) -> None:
    source_url = f"sqlite:///{tmp_path / 'big.db'}"
    with eventkeep.open_store(source_url, synchronous="OFF") as source:
        fill(source, 30_000)
    _killed_and_resumed(source_url, target.url, 30_000, bulk=target)
    assert_bulk_load_finished(target)


def test_copy_postgres_to_sqlite_killed_midway_is_finished_by_running_it_again(
    tmp_path: Path, target: Target
) -> None:
    with eventkeep.open_store(target.url) as source:
        fill(source, 30_000)
    _killed_and_resumed(target.url, f"sqlite:///{tmp_path / 'copy.db'}", 30_000)


def test_copy_of_a_store_with_removals_killed_midway_is_finished_with_its_lifecycle(
    tmp_path: Path, target: Target
) -> None:
    archives = tmp_path / "archives"
    source_url = f"sqlite:///{tmp_path / 'big.db'}?archive_dir={archives}"
    with eventkeep.open_store(source_url, synchronous="OFF") as source:
        fill(source, 30_000)
        source.archive(before_position=500, by="test", reason="old log")
        source.truncate("account-10", 5, by="test")
        source.delete_stream("account-20", hard=True, by="test")
        source.delete_stream("account-30", by="test")
        source.set_retention("account-40", max_count=1)  # all below the kill
        source.compact(by="test")
    _killed_and_resumed(
        source_url, f"{target.url}&archive_dir={tmp_path / 'copied'}", 30_000, bulk=target
    )
    assert_bulk_load_finished(target)
    with (
        eventkeep.open_store(source_url) as source,
        eventkeep.open_store(target.url, archive_dir=tmp_path / "copied") as copy,
    ):
        assert lifecycle_state(copy) == lifecycle_state(source)
        report = copy.verify(deep=False)
        assert not [line for line in report.not_checked if "archive" in line]


def test_backup_of_a_postgres_store_names_pg_dump_without_the_password(target: Target) -> None:
    from click.testing import CliRunner

    from eventkeep.cli import main

    url = target.url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@", 1)
    assert "s3cret" in url
    eventkeep.open_store(target.url).close()
    result = CliRunner().invoke(main, ["--store", url, "backup", "x.db"])
    assert result.exit_code == 2, result.output
    assert "pg_dump --format=custom --schema=" in result.output
    assert "s3cret" not in result.output


def test_imported_events_are_append_only_like_any_other(target: Target) -> None:
    import psycopg

    with eventkeep.open_store("memory://") as source:
        fill(source, 50)
        rows = list(source.export())
    with eventkeep.open_store(target.url) as store:
        assert store.import_(rows).written == 50
        schema = store.schema  # type: ignore[attr-defined]
    with psycopg.connect(target.base_url, autocommit=True) as conn:
        for statement in (
            f"UPDATE {schema}.events SET data_bytes = '{{}}' WHERE position = 1",
            f"DELETE FROM {schema}.events WHERE position = 50",
            f"DELETE FROM {schema}.event_tags",
        ):
            with pytest.raises(psycopg.errors.RestrictViolation, match="eventkeep"):
                conn.execute(statement)
    with eventkeep.open_store(target.url) as store:
        assert store.verify().ok


def test_an_append_racing_an_import_stops_it_between_batches_and_the_log_stays_whole(
    target: Target,
) -> None:
    """Imported events keep their (older) times, and times never go back along the log: once
    an append commits between two batches, the next batch is refused whole. What was written
    verifies, numbered densely, the appends' events and a prefix of the export's."""
    import threading

    with eventkeep.open_store("memory://") as source:
        fill(source, 3000)
        rows = list(source.export())
    with eventkeep.open_store(target.url) as store:
        stop = threading.Event()

        def append() -> None:
            while store.head_position() == 0 and not stop.is_set():
                pass
            n = 0
            while not stop.is_set():
                store.append(f"racer-{n % 7}", [eventkeep.RawEvent("Raced", {"n": n})])
                n += 1

        racer = threading.Thread(target=append)
        racer.start()
        try:
            with pytest.raises(eventkeep.ValidationError, match="times never go back"):
                store.import_(rows, batch_size=100)
        finally:
            stop.set()
            racer.join()
        report = store.verify()
        assert report.ok, report
        stored = list(store.export())
        imported = [r._replace(position=0) for r in stored if not r.stream_id.startswith("racer")]
        assert 100 <= len(imported) < len(rows)
        assert imported == [r._replace(position=0) for r in rows[: len(imported)]]
        assert [r.position for r in stored] == list(range(1, len(stored) + 1))
