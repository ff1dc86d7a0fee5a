"""``store.wait_for_projection``: read your writes through a projection run by a runner."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from failing_projections import Seqs

from eventkeep import EventStore, ProjectionFailedError, RawEvent
from eventkeep.projections import RetryPolicy, Runner


@pytest.fixture
def running(sql_store: EventStore) -> Iterator[Runner]:
    """A runner of Seqs in a background thread of this process."""
    runner = Runner(sql_store, [Seqs()], lease_ttl=5.0, retry=RetryPolicy(first=30.0))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    yield runner
    runner.stop()
    thread.join(60)


def test_wait_for_projection_returns_once_the_read_model_has_the_write(
    sql_store: EventStore, running: Runner
) -> None:
    for seq in range(5):
        result = sql_store.append("n-1", [RawEvent("Numbered", {"seq": seq})])
        assert sql_store.wait_for_projection("test.seqs", result.position, timeout=60)
        with sql_store.transaction() as tx:
            assert tx.execute("SELECT max(seq) FROM seqs") == [(seq,)]
    assert sql_store.wait_for_projection("test.seqs", 1, timeout=0)  # already there


def test_wait_for_projection_times_out_when_nothing_runs_it(sql_store: EventStore) -> None:
    result = sql_store.append("n-1", [RawEvent("Numbered", {"seq": 0})])
    assert not sql_store.wait_for_projection("test.seqs", result.position, timeout=0.2)


def test_wait_for_projection_raises_at_once_when_the_projection_failed_before_it(
    sql_store: EventStore, monkeypatch: pytest.MonkeyPatch, running: Runner
) -> None:
    monkeypatch.setenv("EK_POISON", "1")
    results = [sql_store.append("n-1", [RawEvent("Numbered", {"seq": s})]) for s in range(3)]
    # The runner fails at seq 1 and waits 30 s to retry: the wait must not sit out its timeout.
    with pytest.raises(ProjectionFailedError, match="failed at position") as info:
        sql_store.wait_for_projection("test.seqs", results[2].position, timeout=600)
    assert info.value.failing_position == results[1].position
    assert info.value.error == "ValueError: cannot handle seq 1"
    assert sql_store.wait_for_projection("test.seqs", results[0].position, timeout=60)
