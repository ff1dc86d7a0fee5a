"""A calm runner loop: no busy waiting while a projection backs off, one log line per backoff
step when the store fails, user-code failures confined to their projection, capped retry
delays, and a second signal that exits at once."""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from failing_projections import BrokenReset, Healthy, Seqs, Slow
from projection_harness import Processes, wait_until

import eventkeep
from eventkeep import EventStore, RawEvent
from eventkeep.projections import RetryPolicy, Runner, projection_status, request_rebuild


def numbered(store: EventStore, count: int, start: int = 0) -> None:
    store.append("n-1", [RawEvent("Numbered", {"seq": i}) for i in range(start, start + count)])


def with_option(url: str, option: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{option}"


class HeadQueries:
    """Counts the store's queries of the log's head (every backend's own method for it)."""

    def __init__(self, store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for attr in ("_head_position", "_head"):
            original = getattr(store, attr, None)
            if original is not None:
                monkeypatch.setattr(store, attr, self._counting(original))

    def _counting(self, original: Callable[[], int]) -> Callable[[], int]:
        def counted() -> int:
            self.count += 1
            return original()

        return counted


def test_a_projection_in_backoff_does_not_make_the_loop_spin(
    sql_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbered(sql_store, 20)
    monkeypatch.setenv("EK_POISON", "10")
    runner = Runner(sql_store, [Seqs(), Healthy()], retry=RetryPolicy(first=3.0, longest=3.0))
    failing, healthy = runner.jobs
    assert runner.run(
        until=lambda: healthy.caught_up and failing.record is not None and failing.backing_off,
        timeout=30,
    )
    heads = HeadQueries(sql_store, monkeypatch)
    loops = 0

    def count_loop() -> None:
        nonlocal loops
        loops += 1

    started = time.monotonic()
    assert failing.record is not None
    assert failing.record.retries == 1
    # One backoff of 3 s, then the retry (which fails again).
    runner.run(
        until=lambda: failing.record is not None and failing.record.retries == 2,
        on_step=count_loop,
        timeout=60,
    )
    seconds = time.monotonic() - started
    # Healthy and idle, the loop wakes about 4 times a second and the store polls its head a
    # few times per wait: tens of head queries a second. Spinning, it made ~55,000.
    assert heads.count < 200 * max(seconds, 1.0), (heads.count, seconds, loops)
    assert loops < 50 * max(seconds, 1.0), (loops, seconds)
    print(f"backoff: {heads.count} head queries, {loops} loops in {seconds:.2f}s")


@pytest.fixture
def lock_holder() -> Iterator[Callable[[str, str], threading.Event]]:
    """Holds a projection's record locked (row lock on PostgreSQL, the write lock on SQLite)
    from another store object, until the returned event is set."""
    threads: list[tuple[threading.Thread, threading.Event]] = []

    def hold(url: str, name: str) -> threading.Event:
        held, release = threading.Event(), threading.Event()

        def run() -> None:
            with eventkeep.open_store(url) as other, other.transaction() as tx:
                data = tx.record(name)
                assert data is not None
                tx.save_record(name, data)
                held.set()
                release.wait(60)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        assert held.wait(60), "could not lock the record"
        threads.append((thread, release))
        return release

    yield hold
    for thread, release in threads:
        release.set()
        thread.join(60)


ATTEMPT = re.compile(r"projection test\.seqs: .*; attempt (\d+), next in ([0-9.]+)s")


def test_a_failing_lease_renewal_is_logged_once_per_backoff_step(
    sql_url: str,
    lock_holder: Callable[[str, str], threading.Event],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = with_option(sql_url, "busy_timeout=0.05" if "sqlite" in sql_url else "lock_timeout=0.05")
    with eventkeep.open_store(url) as store:
        numbered(store, 3)
        runner = Runner(store, [Seqs()], lease_ttl=3.0)
        assert runner.run(until_caught_up=True, timeout=30)
        release = lock_holder(sql_url, "test.seqs")
        with caplog.at_level(logging.WARNING, logger="eventkeep.projections"):
            runner.run(until=lambda: len(ATTEMPT.findall(caplog.text)) >= 5, timeout=60)
            attempts = ATTEMPT.findall(caplog.text)
            warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        release.set()
        # One line per attempt, and the attempts back off: 0.05 s, doubling, up to TTL / 3.
        assert [int(n) for n, _ in attempts] == list(range(1, len(attempts) + 1))
        assert [float(d) for _, d in attempts][:5] == [0.05, 0.1, 0.2, 0.4, 0.8]
        assert len(warnings) == len(attempts), [r.getMessage() for r in warnings]
        # Once the store answers again, the runner still holds its lease and goes on.
        numbered(store, 2, start=3)
        assert runner.run(until_caught_up=True, timeout=60)
        assert runner.jobs[0].checkpoint == store.head_position()


def test_an_exception_in_user_code_fails_only_its_projection(
    sql_store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    numbered(sql_store, 5)
    assert Runner(sql_store, [BrokenReset()]).run(until_caught_up=True, timeout=30)
    request_rebuild(sql_store, BrokenReset.name)  # its reset() raises KeyError
    runner = Runner(sql_store, [BrokenReset(), Healthy()], lease_ttl=3.0)
    _broken, healthy = runner.jobs
    assert runner.run(until=lambda: healthy.caught_up, timeout=30)
    numbered(sql_store, 5, start=5)
    assert runner.run(until=lambda: healthy.caught_up and healthy.checkpoint == 10, timeout=30)
    statuses = {s.name: s for s in projection_status(sql_store)}
    assert statuses["test.broken_reset"].state == "failed"
    assert statuses["test.broken_reset"].error == "KeyError: 'no such index'"
    assert statuses["test.healthy"].position == 10
    assert "its code failed (KeyError" in caplog.text


def test_retry_delays_are_capped_however_many_retries() -> None:
    policy = RetryPolicy()
    assert policy.delay(1) == 1.0
    assert policy.delay(7) == 60.0
    assert policy.delay(1100) == 60.0  # ~17 hours of retries raised OverflowError
    assert policy.delay(10**9) == 60.0
    assert RetryPolicy(max_retries=3).delay(4) is None


@pytest.mark.slow
def test_a_second_sigint_exits_at_once_while_a_handler_hangs(
    sql_url: str, processes: Processes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = tmp_path / "in-handler"
    monkeypatch.setenv("EK_MARK", str(mark))
    with eventkeep.open_store(sql_url) as store:
        numbered(store, 3)
    runner = processes.runner(sql_url, "failing_projections:Sleeper")
    wait_until(mark.exists, timeout=120, what="the handler to start hanging")
    runner.send_signal(signal.SIGINT)
    wait_until(
        lambda: "finishing the current batch" in processes.log(runner),
        timeout=120,
        what="the runner to log the first SIGINT",
    )
    assert runner.poll() is None  # the first one only asks it to stop
    runner.send_signal(signal.SIGINT)
    assert processes.finish(runner, timeout=60) == 130, processes.log(runner)
    assert "received SIGINT again: exiting now" in processes.log(runner)


def test_a_batch_holds_its_transaction_for_max_batch_seconds_at_most(
    sql_store: EventStore,
) -> None:
    numbered(sql_store, 50)  # one batch of 50 events that take at least 1 s to handle
    runner = Runner(sql_store, [Slow()])
    job = runner.jobs[0]
    runner.step()  # takes the lease and runs one batch: cut once it has taken 50 ms
    first = job.checkpoint
    assert 0 < first < 50
    assert projection_status(sql_store)[0].position == first  # committed
    assert runner.run(until_caught_up=True, timeout=60)
    with sql_store.transaction() as tx:
        assert tx.execute("SELECT count(*) FROM slow")[0][0] == 50
