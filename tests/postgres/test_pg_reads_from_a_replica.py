"""Reads from a real streaming replica on loopback, appends to the primary.

The replica is a hot standby made by ``pg_basebackup -R`` from a primary of the tests' own
(``pg_fixtures.pg_replica``). Pausing its replay (``pg_wal_replay_pause()``) makes it behind on
demand, which shows which server served a read: an event appended on the primary is not there
until replay resumes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_harness import Workers, check_acknowledged, check_log, wait_until

import eventkeep
import eventkeep.aio
from eventkeep import BackendUnavailableError, ConfigurationError, RawEvent
from eventkeep.backends.postgres import PostgresStore
from eventkeep.projections import HandlerContext, Runner, SQLProjection, handles
from eventkeep.projections.checkpoints import projection_status
from pg_cluster import free_port
from pg_fixtures import APPLIED, ReplicaPair

pytestmark = pytest.mark.slow


@pytest.fixture
def url(pg_replica: ReplicaPair, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh store on the primary (its schema dropped afterwards); replay resumed after."""
    yield pg_replica.store_url(request)
    pg_replica.resume_replay()


def open_pair(url: str, pair: ReplicaPair, **options: Any) -> PostgresStore:
    store = eventkeep.open_store(url, read_url=pair.read_url, **options)
    assert isinstance(store, PostgresStore)
    return store


def replica_head(pair: ReplicaPair, schema: str) -> int:
    """The store's head position on the replica, asked directly (0 before its creation)."""
    function = f"{schema}.eventkeep_head_position()"
    [created] = pair.on_replica(f"SELECT to_regprocedure('{function}') IS NOT NULL")
    return int(pair.on_replica(f"SELECT {function}")[0]) if created else 0


def replayed(pair: ReplicaPair, store: PostgresStore, position: int) -> None:
    """Wait until the replica holds ``position`` (its replay resumed)."""
    wait_until(
        lambda: replica_head(pair, store.schema) >= position, "the replica to replay", timeout=60
    )


def test_reads_are_served_by_the_replica_and_appends_by_the_primary(
    url: str, pg_replica: ReplicaPair
) -> None:
    with open_pair(url, pg_replica) as writer, open_pair(url, pg_replica) as reader:
        first = writer.append("a-1", [RawEvent("Opened", {"n": 1})])
        replayed(pg_replica, reader, first.position)
        assert [e.version for e in reader.read_stream("a-1")] == [1]
        pg_replica.pause_replay()
        second = writer.append("a-1", [RawEvent("Noted", {"n": 2})])
        # The primary has it; the reader's replica does not until replay resumes.
        assert [e.version for e in reader.read_stream("a-1")] == [1]
        assert reader.head_position() == first.position
        assert reader.stream_version("a-1") == 1
        pg_replica.resume_replay()
        replayed(pg_replica, reader, second.position)
        assert [e.version for e in reader.read_stream("a-1")] == [1, 2]
        assert reader._replica is not None
        assert reader._replica.replica_reads > 0
        assert reader._replica.primary_reads == 0
        # The replica's pool holds connections to a server in recovery.
        with reader._replica.replica.connection() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        with writer._db.connection() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)


def test_a_store_reads_its_own_appends_even_while_the_replica_is_behind(
    url: str, pg_replica: ReplicaPair
) -> None:
    with open_pair(url, pg_replica, replica_wait=0.2) as store:
        store.append("b-1", [RawEvent("Opened", {"n": 1})])
        pg_replica.pause_replay()
        result = store.append("b-1", [RawEvent("Noted", {"n": 2})])
        # Its own append: served by the primary once the replica did not catch up in 0.2 s.
        assert [e.version for e in store.read_stream("b-1")] == [1, 2]
        assert store.head_position() == result.position
        assert [e.position for e in store.read_all()][-1] == result.position
        assert store._replica is not None
        assert store._replica.primary_reads >= 1
        # Nor does it go back in time: what it saw from the primary, it sees from now on.
        other = open_pair(url, pg_replica)
        try:
            other.append("c-1", [RawEvent("Opened", {"n": 3})])
            seen = store.head_position()
            assert store.head_position() >= seen
        finally:
            other.close()
        pg_replica.resume_replay()
        served = store._replica.replica_reads
        replayed(pg_replica, store, result.position)
        assert [e.version for e in store.read_stream("b-1")] == [1, 2]
        assert store._replica.replica_reads > served  # the replica again, once it caught up


def test_a_store_transaction_that_appended_is_read_back_from_where_it_is(
    url: str, pg_replica: ReplicaPair
) -> None:
    with open_pair(url, pg_replica, replica_wait=0.2) as store:
        pg_replica.pause_replay()
        with store.transaction() as tx:
            tx.append("t-1", [RawEvent("Opened", {"n": 1})])
        assert [e.version for e in store.read_stream("t-1")] == [1]


def test_appends_go_to_the_primary_whatever_the_replica_does(
    url: str, pg_replica: ReplicaPair
) -> None:
    with open_pair(url, pg_replica) as store:
        pg_replica.pause_replay()
        results = [store.append(f"w-{n}", [RawEvent("Opened", {"n": n})]) for n in range(20)]
        with store.transaction() as tx:
            tx.append("w-tx", [RawEvent("Opened", {"n": 99})])
            tx.save_checkpoint("w-checkpoint", results[-1].position, expected=None)
        store.save_snapshot("w-1", 1, "state", 1, b"{}")
    with eventkeep.open_store(url) as primary_only:
        assert primary_only.head_position() >= results[-1].position
        assert primary_only.stream_version("w-tx") == 1
        assert primary_only.load_snapshot("w-1") is not None
        with primary_only.transaction() as tx:
            assert tx.checkpoint("w-checkpoint") == results[-1].position


def test_wait_for_events_wakes_only_once_the_replica_has_replayed_the_event(
    url: str, pg_replica: ReplicaPair
) -> None:
    with open_pair(url, pg_replica, poll_interval=0.2) as reader, eventkeep.open_store(url) as w:
        head = reader.head_position()
        pg_replica.pause_replay()
        result = w.append("n-1", [RawEvent("Opened", {"n": 1})])
        # The primary notified, but a read would not see it yet: no wake-up.
        assert not reader.wait_for_events(head, timeout=0.5)
        woke: list[float] = []

        def wait() -> None:
            if reader.wait_for_events(head, timeout=60):
                woke.append(time.monotonic())

        thread = threading.Thread(target=wait)
        thread.start()
        pg_replica.resume_replay()
        thread.join(60)
        assert woke
        assert reader.head_position() >= result.position


class Positions(SQLProjection):
    """One row per event: a second apply of any event breaks the key."""

    name = "test.replica_positions"
    tables = ("replica_positions",)
    schema = ("CREATE TABLE {replica_positions} (position BIGINT PRIMARY KEY, stream TEXT)",)

    @handles("Numbered")
    def numbered(self, event: RawEvent, ctx: HandlerContext) -> None:
        ctx.execute(
            "INSERT INTO {replica_positions} VALUES (?, ?)", (ctx.position, ctx.recorded.stream_id)
        )


def test_a_projection_reading_from_the_replica_catches_up_exactly_once(
    url: str, pg_replica: ReplicaPair
) -> None:
    """Events from the replica, read model and checkpoint on the primary in one transaction,
    while a writer appends and the replica's replay is paused and resumed under the runner."""
    with open_pair(url, pg_replica) as store, eventkeep.open_store(url) as writer:
        runner = Runner(store, [Positions()], lease_ttl=5.0)
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        try:
            for n in range(300):
                writer.append(f"p-{n % 7}", [RawEvent("Numbered", {"n": n})])
                if n == 100:
                    pg_replica.pause_replay()
                if n == 200:
                    lag = store.replica_lag()
                    assert lag is not None
                    assert lag.positions_behind > 0
                    [status] = projection_status(store)
                    assert status.replica is not None
                    assert status.replica.positions_behind > 0
                    assert status.head == lag.primary_head  # the primary's head, not the replica's
                    pg_replica.resume_replay()
            head = writer.head_position()
            wait_until(
                lambda: projection_status(store)[0].position >= head,
                "the projection to catch up from the replica",
                timeout=120,
            )
        finally:
            runner.stop()
            thread.join(60)
        log = [e.position for e in writer.read_all()]
        with writer.transaction() as tx:
            rows = [int(p) for (p,) in tx.execute("SELECT position FROM replica_positions")]
        assert sorted(rows) == log  # every event once: none skipped, none twice
        [status] = projection_status(store)
        assert status.state != "failed"
        assert status.replica is not None
        assert status.replica.in_recovery


def test_the_lag_is_shown_in_positions_bytes_and_seconds(url: str, pg_replica: ReplicaPair) -> None:
    with open_pair(url, pg_replica) as store:
        first = store.append("l-1", [RawEvent("Opened", {"n": 0})])
        replayed(pg_replica, store, first.position)
        pg_replica.pause_replay()
        for n in range(5):
            store.append("l-1", [RawEvent("Noted", {"n": n})])
        time.sleep(0.2)
        lag = store.replica_lag()
        assert lag is not None
        assert lag.positions_behind == 5
        assert lag.primary_head - lag.replica_head == 5
        assert lag.bytes_behind > 0
        assert lag.seconds_behind > 0
        assert lag.in_recovery
        assert f"127.0.0.1:{pg_replica.replica.port}" in lag.read_url
        pg_replica.resume_replay()
        wait_until(
            lambda: (store.replica_lag() or lag).positions_behind == 0, "the replay", timeout=60
        )
    with eventkeep.open_store(url) as primary_only:
        assert isinstance(primary_only, PostgresStore)
        assert primary_only.replica_lag() is None
        assert primary_only.read_url is None


def test_a_replica_that_is_down_fails_reads_naming_the_read_url_without_its_password(
    url: str, pg_replica: ReplicaPair
) -> None:
    port = free_port()  # nothing listens there
    read_url = f"postgresql://postgres:s3cret-pw@127.0.0.1:{port}/postgres"
    with eventkeep.open_store(url, read_url=read_url, pool_timeout=1, connect_timeout=1) as store:
        result = store.append("d-1", [RawEvent("Opened", {"n": 1})])  # writes go on
        assert result.position >= 1
        with pytest.raises(BackendUnavailableError) as info:
            list(store.read_stream("d-1"))
        message = str(info.value)
        assert f"127.0.0.1:{port}" in message
        assert "s3cret" not in message
        assert "s3cret" not in repr(store)
        assert "s3cret" not in str(store.read_url)


def test_read_host_and_read_port_in_the_url_name_the_replica(
    url: str, pg_replica: ReplicaPair
) -> None:
    port = pg_replica.replica.port
    with eventkeep.open_store(f"{url}&read_host=127.0.0.1&read_port={port}") as store:
        assert isinstance(store, PostgresStore)
        assert store.read_url is not None
        assert f"127.0.0.1:{port}" in store.read_url
        store.append("u-1", [RawEvent("Opened", {"n": 1})])
        assert [e.version for e in store.read_stream("u-1")] == [1]
        assert store._replica is not None
        assert store._replica.replica_reads > 0
    with pytest.raises(ConfigurationError, match="not both"):
        eventkeep.open_store(url, read_url=pg_replica.read_url, read_host="127.0.0.1")
    with pytest.raises(ConfigurationError, match="postgresql://"):
        eventkeep.open_store(url, read_url="sqlite:///x.db")


def test_the_asyncio_api_reads_from_the_replica_too(url: str, pg_replica: ReplicaPair) -> None:
    async def main() -> tuple[list[int], int]:
        store = await eventkeep.aio.open_store(url, read_url=pg_replica.read_url)
        try:
            await store.append("aio-1", [RawEvent("Opened", {"n": 1})])
            versions = [e.version async for e in store.read_stream("aio-1")]
            sync = store.sync
            assert isinstance(sync, PostgresStore)
            assert sync._replica is not None
            return versions, sync._replica.replica_reads
        finally:
            await store.close()

    versions, served = asyncio.run(main())
    assert versions == [1]
    assert served > 0


def test_readers_on_the_replica_never_skip_while_writer_processes_append_hard(
    tmp_path: Path, url: str, pg_replica: ReplicaPair
) -> None:
    """Four writer processes append to the primary as fast as they can; two reader processes
    tail ``read_all`` on the replica (``?read_host=&read_port=``), waking by
    ``wait_for_events``. Each reader read every committed event exactly once, in log order: a
    replica snapshot that shows a position shows every position below it."""
    with eventkeep.open_store(url):
        pass  # create the schema before the workers open it
    replica_url = f"{url}&read_host=127.0.0.1&read_port={pg_replica.replica.port}&replica_wait=30"
    crew = Workers(tmp_path, url)
    try:
        writers = [f"writer-{n}" for n in range(4)]
        readers = ["reader-0", "reader-1"]
        for name in readers:
            crew.spawn("reader", name, url=replica_url)
        for n, name in enumerate(writers):
            streams = ",".join(f"{name}-s{k}" for k in range(3))
            crew.spawn("writer", name, "--streams", streams, "--appends", "60", "--seed", str(n))
        crew.all_ready([*readers, *writers])
        crew.go()
        results = crew.finish(writers)
        with eventkeep.open_store(url) as store:
            crew.stop_readers_at(store.head_position())
            seen = crew.finish(readers)
            log = list(store.read_all())
    finally:
        crew.kill_all()
    check_log(log, seen)
    appends = [a for name in writers for a in results[name]]
    assert check_acknowledged(log, appends) == len(log)
    for name in readers:
        served = json.loads(crew.out(name).with_suffix(".served").read_text())
        assert served["replica"] > 0, "the reader did not read the replica"
        assert served["primary"] == 0, "the reader read the primary"


def test_the_cli_reads_from_the_replica_and_shows_its_lag_in_projection_status(
    url: str, pg_replica: ReplicaPair, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from eventkeep.cli import main

    runner = CliRunner(env={"COLUMNS": "200", "EVENTKEEP_STORE": None, "EVENTKEEP_READ_URL": None})
    with open_pair(url, pg_replica) as store:
        for n in range(3):
            store.append("cli-1", [RawEvent("Numbered", {"n": n})])
        projection_runner = Runner(store, [Positions()], lease_ttl=30.0)
        projection_runner.run(until_caught_up=True, timeout=60)
    read = runner.invoke(
        main, ["read", "cli-1", "--json", "--store", url, "--read-url", pg_replica.read_url]
    )
    assert read.exit_code == 0, read.output
    assert [e["version"] for e in json.loads(read.output)] == [1, 2, 3]
    shown = runner.invoke(
        main, ["--store", url, "--read-url", pg_replica.read_url, "projections", "status"]
    )
    assert shown.exit_code == 0, shown.output
    assert (
        f"Reading from the replica postgresql://postgres@127.0.0.1:{pg_replica.replica.port}"
        in shown.output
    )
    assert "behind the primary" in shown.output
    as_json = runner.invoke(
        main,
        ["projections", "status", "--json"],
        env={"EVENTKEEP_STORE": url, "EVENTKEEP_READ_URL": pg_replica.read_url},
    )
    assert as_json.exit_code == 0, as_json.output
    [row] = json.loads(as_json.output)
    assert row["replica"]["in_recovery"] is True
    assert row["replica"]["positions_behind"] >= 0
    refused = runner.invoke(
        main,
        ["--store", f"sqlite:///{tmp_path / 'x.db'}", "--read-url", pg_replica.read_url, "streams"],
    )
    assert refused.exit_code == 2
    assert "is not PostgreSQL" in refused.output
    assert "Traceback" not in refused.output


def test_a_forget_is_seen_at_once_by_the_store_that_made_it_though_the_replica_is_behind(
    url: str, pg_replica: ReplicaPair
) -> None:
    """The forget's key deletion is a write readers see: a replica that has not replayed it
    still holds the key, so the store's reads go to the primary until it has."""
    from eventkeep.store.personal import REDACTED
    from eventkeep.testing.events import CustomerRegistered

    with open_pair(url, pg_replica, replica_wait=0.2) as store:
        store.registry.register(CustomerRegistered)
        store.append("customer-c1", [CustomerRegistered(customer_id="c1", email="ada@x.org")])
        assert next(store.read_stream("customer-c1")).event.email == "ada@x.org"
        pg_replica.pause_replay()
        assert store.forget("c1", by="dpo", reason="request").had_key
        assert next(store.read_stream("customer-c1")).event.email == REDACTED
        with open_pair(url, pg_replica, replica_wait=0.2) as other:
            other.registry.register(CustomerRegistered)
            # A store opened after the forget waits for (or bypasses) the replica too.
            assert next(other.read_stream("customer-c1")).event.email == REDACTED


def test_with_remote_apply_every_store_reads_another_stores_commit_at_once(
    url: str, pg_replica: ReplicaPair
) -> None:
    """A synchronous standby and ``synchronous_commit = remote_apply``: an append returns once
    the replica has replayed it, so a reader of the replica that never wrote sees it at once."""
    with (
        open_pair(url, pg_replica, **APPLIED) as writer,
        open_pair(url, pg_replica) as reader,
    ):
        for n in range(30):
            result = writer.append("sync-1", [RawEvent("Noted", {"n": n})])
            assert reader.stream_version("sync-1") == result.version
            assert reader.head_position() == result.position
        assert reader._replica is not None
        assert reader._replica.primary_reads == 0


def test_a_read_served_by_the_replica_teaches_no_head(url: str, pg_replica: ReplicaPair) -> None:
    # A replica's read may lag the primary: a head learned from it would make the next append
    # a refused round trip more often than not. Only reads on the primary teach heads.
    with open_pair(url, pg_replica) as writer, open_pair(url, pg_replica) as reader:
        reader.append("clock", [RawEvent("Noted", {"n": 0})])  # it knows the server's clock
        first = writer.append("d-1", [RawEvent("Opened", {"n": 1})])
        replayed(pg_replica, reader, first.position)
        assert [e.version for e in reader.read_stream("d-1")] == [1]
        assert reader._replica is not None
        assert reader._replica.replica_reads > 0
        assert "d-1" not in reader._known._heads
        second = reader.append("d-1", [RawEvent("Noted", {"n": 2})], expected_version=1)
        assert second.versions == (2,)
