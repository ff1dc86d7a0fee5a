"""Eight writer processes and two readers tailing the global log, on one PostgreSQL store.

Six writers append to streams of their own, two fight over one hot stream with expected
versions and retries, and two readers tail ``read_all`` from the start. Afterwards every
committed event was read by each reader exactly once, both read the same order, that order
agrees with every stream's versions, and every expected version of the hot stream had exactly
one winner. The second test adds the hard cases of global ordering: transactions held open with
inserted rows (one committed late, one rolled back) and a writer killed between its two
transactions.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_harness import (
    SEQUENCER_LOCK_KEY,
    Workers,
    check_acknowledged,
    check_log,
    check_whole_batches,
    raw_connection,
    wait_until,
)

import eventkeep
from pg_fixtures import Target

pytestmark = pytest.mark.slow

WRITERS = [f"writer-{n}" for n in range(6)]
HOT_WRITERS = ["hot-0", "hot-1"]
READERS = ["reader-0", "reader-1"]
APPENDS = 30
HOT_APPENDS = 20


@pytest.fixture
def workers(tmp_path: Path, target: Target) -> Iterator[Workers]:
    crew = Workers(tmp_path, target.url)
    yield crew
    crew.kill_all()


def start_everyone(workers: Workers) -> None:
    for name in READERS:
        workers.spawn("reader", name)
    for n, name in enumerate(WRITERS):
        streams = ",".join(f"{name}-s{k}" for k in range(3))
        workers.spawn(
            "writer", name, "--streams", streams, "--appends", str(APPENDS), "--seed", str(n)
        )
    for n, name in enumerate(HOT_WRITERS):
        workers.spawn(
            "hot-writer",
            name,
            "--streams",
            "hot",
            "--appends",
            str(HOT_APPENDS),
            "--seed",
            str(100 + n),
        )
    workers.all_ready([*READERS, *WRITERS, *HOT_WRITERS])
    workers.go()


def finish_and_check(workers: Workers, target: Target) -> tuple[list[Any], dict[str, Any]]:
    results = workers.finish([*WRITERS, *HOT_WRITERS])
    with eventkeep.open_store(target.url) as store:
        workers.stop_readers_at(store.head_position())
        readers = workers.finish(READERS)
        log = list(store.read_all())
        assert store.verify().ok
    check_log(log, readers)
    check_whole_batches(log)
    appends = [a for name in WRITERS for a in results[name]]
    hot = [a for name in HOT_WRITERS for a in results[name]["appends"]]
    assert check_acknowledged(log, [*appends, *hot]) == sum(len(a["ids"]) for a in appends + hot)
    check_one_winner_per_expected_version(hot, log)
    return log, results


def check_one_winner_per_expected_version(hot: list[dict[str, Any]], log: list[Any]) -> None:
    """Each acknowledged hot append was written right after the version it expected, and no
    two appends claim a version: exactly one winner per expected version."""
    claimed: dict[int, str] = {}
    for append in hot:
        first = append["versions"][0]
        assert append["expected"] == first - 1
        for version in append["versions"]:
            assert version not in claimed, f"hot version {version} won twice"
            claimed[version] = append["ids"][0]
    stored = sorted(e.version for e in log if e.stream_id == "hot")
    assert sorted(claimed) == stored == list(range(1, len(stored) + 1))
    assert len(hot) == len(HOT_WRITERS) * HOT_APPENDS


def test_every_committed_event_is_read_exactly_once_in_one_order_by_every_reader(
    workers: Workers, target: Target
) -> None:
    start_everyone(workers)
    log, _ = finish_and_check(workers, target)
    assert len(log) >= len(WRITERS) * APPENDS + len(HOT_WRITERS) * HOT_APPENDS


class Rollback(Exception):
    pass


def test_transactions_rolled_back_or_cut_short_never_make_a_reader_skip(
    workers: Workers, target: Target
) -> None:
    """While writers and readers run: a store transaction that appended (holding the sequencer)
    rolls back, and its positions are given to the next append, never seen by a reader; a
    writer killed while its append waits for the sequencer's lock leaves nothing behind (its one
    transaction rolls back) and holds nobody up."""
    with eventkeep.open_store(target.url) as store:  # also creates the schema
        admin = raw_connection(target.base_url, target.schema)
        try:
            start_everyone(workers)

            # Cut a writer short inside its append: hold the sequencer's lock, let the writer's
            # append block on it, then kill the writer and its server process.
            key = admin.execute(SEQUENCER_LOCK_KEY, (target.schema,)).fetchone()[0]
            admin.execute("SELECT pg_advisory_lock(%s)", (key,))
            victim = workers.spawn(
                "writer",
                "victim",
                "--streams",
                "victim-1",
                "--appends",
                "1",
                "--seed",
                "7",
                url=f"{target.url}&application_name=victim",
            )
            backend = wait_until(
                lambda: admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'victim' "
                    "AND wait_event = 'advisory'"
                ).fetchone(),
                "a writer to wait for the sequencer",
                timeout=120,
            )[0]
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
            admin.execute("SELECT pg_advisory_unlock(%s)", (key,))

            # Once the others made progress, a transaction appends and rolls back.
            wait_until(
                lambda: admin.execute("SELECT count(*) FROM events").fetchone()[0] > 150,
                "the writers to make progress",
                timeout=120,
            )

            def append_then_roll_back() -> None:
                with store.transaction() as tx:
                    result = tx.append("doomed-1", doomed_events)
                    assert len(result.positions) == 2
                    raise Rollback

            doomed_events = [
                eventkeep.NewEvent(eventkeep.RawEvent("pg.Doomed", {"n": n}), event_id=uuid.uuid4())
                for n in range(2)
            ]
            with pytest.raises(Rollback):
                append_then_roll_back()
            log, _ = finish_and_check(workers, target)
        finally:
            admin.close()
    stored = {str(e.event_id) for e in log}
    assert not any(str(ev.event_id) in stored for ev in doomed_events)
    assert [e for e in log if e.stream_id == "doomed-1"] == []
    victims = [e for e in log if e.stream_id == "victim-1"]
    assert victims == [], "a writer killed inside its append left events behind"
    # Positions stayed dense: the rolled-back ones were given to later appends.
    assert [e.position for e in log] == list(range(1, len(log) + 1))
