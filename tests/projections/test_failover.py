"""A frozen runner (SIGSTOP, a real process) is fenced and a standby takes over; after SIGCONT
the old runner's next commit is refused and nothing is applied twice.

The bound (docs/projections.md, "Operations"): a standby takes over within the lease TTL plus
its poll (at most 1 s), plus on PostgreSQL, when the runner froze inside a batch,
``idle_in_transaction_timeout`` (the server then ends the frozen session and its locks). On
SQLite a process frozen inside a batch keeps the write lock for as long as it is frozen: no one
can cut it off, so only a runner frozen between batches is tested there. Waits are on states,
with generous deadlines; the measured takeover times are printed, never asserted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from projection_harness import Processes, wait_until

import eventkeep
import pg_fixtures
from eventkeep import BackendUnavailableError, EventStore, NotFoundError, RawEvent
from eventkeep.projections import projection_status

TTL = 2.0
STUCK = 120.0
FREEZER = "failing_projections:Freezer"


def numbered(store: EventStore, count: int, start: int = 0) -> None:
    store.append("n-1", [RawEvent("Numbered", {"seq": i}) for i in range(start, start + count)])


def with_option(url: str, option: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{option}"


def holder(store: EventStore) -> tuple[str | None, int]:
    try:
        [status] = projection_status(store, "test.freezer")
    except NotFoundError:  # not started yet
        return None, 0
    pid = status.owner.split(":")[1] if status.owner else None
    return pid, status.position


def check_applied_once(store: EventStore) -> None:
    """Every event is in the read model exactly once (the key refuses a second insert) and
    at its position in the log."""
    with store.transaction() as tx:
        rows = tx.execute("SELECT seq, position FROM seqs ORDER BY seq")
    logged = [(e.event.data["seq"], e.position) for e in store.read_all(0, 100_000)]  # type: ignore[union-attr]
    assert [(int(s), int(p)) for s, p in rows] == logged


def start_pair(
    url: str, processes: Processes, store: EventStore
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """An active runner, then a standby that has found the lease held."""
    active = processes.runner(url, FREEZER, ttl=TTL)
    wait_until(lambda: holder(store)[0] == str(active.pid), timeout=STUCK, what="the lease")
    standby = processes.runner(url, FREEZER, ttl=TTL, probe=True)
    wait_until(
        lambda: "standing by behind" in processes.log(standby),
        timeout=STUCK,
        what="the standby to stand by",
    )
    return active, standby


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> str:
    return str(pg_fixtures.fresh_store_url(request))


@pytest.mark.slow
def test_a_runner_frozen_inside_a_batch_on_postgres_is_fenced_and_replaced(
    postgres_url: str, processes: Processes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL only: SQLite cannot cut off a frozen holder of its write lock (the next test).
    url = with_option(postgres_url, "idle_in_transaction_timeout=2")
    mark = tmp_path / "frozen"
    monkeypatch.setenv("EK_MARK", str(mark))
    monkeypatch.setenv("EK_FREEZE_AT", "120")
    with eventkeep.open_store(url) as store:
        numbered(store, 10)
        active, standby = start_pair(url, processes, store)
        numbered(store, 190, start=10)
        wait_until(mark.exists, timeout=STUCK, what="the runner to reach the freezing event")
        assert mark.read_text() == str(active.pid)
        os.kill(active.pid, signal.SIGSTOP)  # inside its batch, in its transaction
        frozen_at = time.monotonic()
        try:
            wait_until(
                lambda: holder(store) == (str(standby.pid), store.head_position()),
                timeout=STUCK,
                what="the standby to take over and catch up",
            )
            took = time.monotonic() - frozen_at
            numbered(store, 10, start=200)  # appends are not blocked by the frozen runner
            wait_until(
                lambda: holder(store)[1] == store.head_position(),
                timeout=STUCK,
                what="the standby to handle new events",
            )
        finally:
            os.kill(active.pid, signal.SIGCONT)
        # Woken up, the old runner's batch cannot commit: it stands by.
        wait_until(
            lambda: "standing by" in processes.log(active),
            timeout=STUCK,
            what="the old runner to find itself fenced",
        )
        numbered(store, 10, start=210)
        wait_until(
            lambda: holder(store) == (str(standby.pid), store.head_position()),
            timeout=STUCK,
            what="the standby to go on",
        )
        check_applied_once(store)
        print(f"postgres: frozen inside a batch, taken over in {took:.1f}s (TTL {TTL}s, idle 2s)")


def freeze_between_batches(proc: subprocess.Popen[bytes], url: str) -> None:
    """SIGSTOP the runner at a moment it holds no transaction: a SQLite append (which needs the
    write lock) still succeeds. If the stop landed inside a (short) transaction, let it go on
    and try again."""
    if not url.startswith("sqlite"):  # PostgreSQL cuts a frozen transaction off anyway
        os.kill(proc.pid, signal.SIGSTOP)
        return
    with eventkeep.open_store(with_option(url, "busy_timeout=0.5")) as probe:
        for _ in range(50):
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                probe.append("probe-1", [RawEvent("Probe", {})])
                return
            except BackendUnavailableError:
                os.kill(proc.pid, signal.SIGCONT)
                time.sleep(0.05)
    pytest.fail("could not freeze the runner outside a transaction")


@pytest.mark.slow
def test_a_runner_frozen_between_batches_is_fenced_and_replaced(
    sql_url: str, processes: Processes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EK_MARK", str(tmp_path / "unused"))
    with eventkeep.open_store(sql_url) as store:
        numbered(store, 100)
        active, standby = start_pair(sql_url, processes, store)
        wait_until(
            lambda: holder(store) == (str(active.pid), store.head_position()),
            timeout=STUCK,
            what="the active runner to catch up",
        )
        freeze_between_batches(active, sql_url)
        frozen_at = time.monotonic()
        try:
            numbered(store, 100, start=100)  # appends go on while it is frozen
            wait_until(
                lambda: holder(store) == (str(standby.pid), store.head_position()),
                timeout=STUCK,
                what="the standby to take over and catch up",
            )
            took = time.monotonic() - frozen_at
        finally:
            os.kill(active.pid, signal.SIGCONT)
        wait_until(
            lambda: "standing by" in processes.log(active),
            timeout=STUCK,
            what="the old runner to find itself fenced",
        )
        numbered(store, 50, start=200)
        wait_until(
            lambda: holder(store) == (str(standby.pid), store.head_position()),
            timeout=STUCK,
            what="the standby to go on",
        )
        with store.transaction() as tx:
            rows = tx.execute("SELECT seq, position FROM seqs ORDER BY seq")
        logged = [
            (e.event.data["seq"], e.position)  # type: ignore[union-attr]
            for e in store.read_all(0, 100_000, types=["Numbered"])
        ]
        assert [(int(s), int(p)) for s, p in rows] == logged
        print(f"{sql_url.split(':')[0]}: frozen between batches, taken over in {took:.1f}s")


@pytest.mark.slow
def test_on_sqlite_a_runner_frozen_inside_a_batch_blocks_writers_until_it_is_gone(
    processes: Processes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented limitation, as it is: SQLite cannot cut off a frozen holder of its write
    lock. Appends fail ("database is locked") while it is frozen; once the frozen process is
    gone (here: killed), the standby takes over at once and nothing is applied twice."""
    sql_url = f"sqlite:///{tmp_path / 'frozen-inside.db'}"
    mark = tmp_path / "frozen"
    monkeypatch.setenv("EK_MARK", str(mark))
    monkeypatch.setenv("EK_FREEZE_AT", "120")
    with eventkeep.open_store(sql_url) as store:
        numbered(store, 10)
        active, standby = start_pair(sql_url, processes, store)
        numbered(store, 190, start=10)
        wait_until(mark.exists, timeout=STUCK, what="the runner to reach the freezing event")
        os.kill(active.pid, signal.SIGSTOP)  # inside its batch: it holds the write lock
        with (
            eventkeep.open_store(with_option(sql_url, "busy_timeout=0.2")) as probe,
            pytest.raises(BackendUnavailableError, match="locked"),
        ):
            probe.append("probe-1", [RawEvent("Probe", {})])
        processes.kill(active)  # gone: the lock with it; a dead holder on this host
        wait_until(
            lambda: holder(store) == (str(standby.pid), store.head_position()),
            timeout=STUCK,
            what="the standby to take over and catch up",
        )
        numbered(store, 10, start=200)
        wait_until(
            lambda: holder(store)[1] == store.head_position(),
            timeout=STUCK,
            what="the standby to handle new events",
        )
        check_applied_once(store)
