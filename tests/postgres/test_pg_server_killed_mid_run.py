"""SIGKILL the PostgreSQL server in the middle of a run of writers and a reader, then restart it.

Writers retry their appends with the same event ids while the server is away, as an
application would. Their sessions even run with ``synchronous_commit=off``: the append's
transaction, which numbers its events, must flush regardless of the session, or an acknowledged
event (whose position a reader may have seen) could die with the server's WAL buffers.

Afterwards: no acknowledged event is lost (each is stored at the version and position it was
acknowledged with), no append is partly visible, the reader read the whole log exactly once in
order across the crash, and ``verify`` is all-clear.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pg_harness import (
    Workers,
    check_acknowledged,
    check_log,
    check_whole_batches,
    raw_connection,
    wait_until,
)

import eventkeep
from pg_cluster import Cluster
from pg_fixtures import PgServer, new_schema_name, with_schema

pytestmark = pytest.mark.slow

WRITERS = [f"writer-{n}" for n in range(4)]
HELD = "writer-0"
"""Holds after 30 of its 60 appends until the server is back: at least one writer is mid-run at
the kill, however fast the others are (or however slow the test process is)."""


def test_no_acknowledged_event_is_lost_and_no_append_is_partial_after_a_server_kill(
    own_cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    cluster = own_cluster
    schema = new_schema_name()
    request.addfinalizer(lambda: PgServer(cluster.url, cluster).drop_schema(schema))
    url = with_schema(cluster.url, schema) + "&options=-c%20synchronous_commit%3Doff"
    with eventkeep.open_store(url):
        pass
    workers = Workers(tmp_path, url)
    try:
        workers.spawn("reader", "reader")
        for n, name in enumerate(WRITERS):
            streams = f"{name}-a,{name}-b"
            hold = ["--hold-at", "30"] if name == HELD else []
            workers.spawn(
                "writer", name, "--streams", streams, "--appends", "60", "--seed", str(n), *hold
            )
        workers.spawn("hot-writer", "hot", "--streams", "hot", "--appends", "20", "--seed", "9")
        names = [*WRITERS, "hot"]
        workers.all_ready([*names, "reader"])
        workers.go()

        admin = raw_connection(cluster.url, schema)
        try:
            wait_until(
                lambda: (
                    admin.execute(
                        "SELECT count(*) FROM events WHERE position IS NOT NULL"
                    ).fetchone()[0]
                    >= 80
                    and workers.held(HELD)
                ),
                "the writers to get going",
                timeout=120,
            )
        finally:
            admin.close()
        cluster.kill()
        time.sleep(0.5)  # some downtime for the workers to run into (its length decides nothing)
        cluster.start()
        workers.resume()

        results = workers.finish(names, timeout=150)
        with eventkeep.open_store(url) as store:
            workers.stop_readers_at(store.head_position())
            readers = workers.finish(["reader"], timeout=150)
            log = list(store.read_all())
            report = store.verify()
        assert report.ok, report.broken
    finally:
        workers.kill_all()
    # Writers may or may not have needed a retry: a pooled connection that died while idle is
    # replaced at checkout without an error. The held writer made its last 30 appends after the
    # restart either way (it was holding at the kill), on connections of the new server.
    check_log(log, readers)
    check_whole_batches(log)
    appends = [a for name in WRITERS for a in results[name]] + results["hot"]["appends"]
    assert check_acknowledged(log, appends) == sum(len(a["ids"]) for a in appends)
    assert len(appends) == len(WRITERS) * 60 + 20
    acked = {i for a in appends for i in a["ids"]}
    assert {str(e.event_id) for e in log} == acked, "an event no writer acknowledged is stored"
