"""Failures that lose nothing: a failed batch commits everything before its failing event, and
a skip passes over that one event only, on record (who, why, when); the API and the CLI."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from failing_projections import Seqs

from eventkeep import EventStore, RawEvent, ValidationError
from eventkeep.cli import main
from eventkeep.projections import (
    Projection,
    RetryPolicy,
    Runner,
    projection_status,
    retry_projection,
    skip_event,
)

FAST_RETRY = RetryPolicy(first=0.01, factor=2.0, longest=0.05)


def numbered(store: EventStore, count: int) -> None:
    store.append("n-1", [RawEvent("Numbered", {"seq": i}) for i in range(count)])


def run(store: EventStore, *projections: Projection, **options: Any) -> Runner:
    runner = Runner(store, projections, lease_ttl=5.0, retry=FAST_RETRY, **options)
    assert runner.run(until_caught_up=True, timeout=30), "the runner did not catch up"
    return runner


def run_until_failed(store: EventStore, projection: Projection) -> None:
    runner = Runner(store, [projection], lease_ttl=5.0, retry=FAST_RETRY)
    job = runner.jobs[0]
    assert runner.run(
        until=lambda: job.record is not None and job.record.state == "failed", timeout=30
    )


def seqs(store: EventStore) -> list[int]:
    with store.transaction() as tx:
        return [int(row[0]) for row in tx.execute("SELECT seq FROM seqs ORDER BY seq")]


def log_seqs(store: EventStore, skipped: set[int]) -> list[int]:
    """What a rebuild from the log without the skipped positions holds."""
    return sorted(
        int(e.event.data["seq"])  # type: ignore[union-attr]
        for e in store.read_all(0, 100_000, types=["Numbered"])
        if e.position not in skipped
    )


def position_of(store: EventStore, seq: int) -> int:
    [hit] = [e.position for e in store.read_all(0, 100_000) if e.event.data["seq"] == seq]  # type: ignore[union-attr]
    return hit


def test_a_failed_batch_commits_every_event_before_the_failing_one(
    sql_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbered(sql_store, 100)
    monkeypatch.setenv("EK_POISON", "59")
    run_until_failed(sql_store, Seqs())
    [status] = projection_status(sql_store)
    poison = position_of(sql_store, 59)
    assert (status.state, status.failing_position) == ("failed", poison)
    assert status.position == position_of(sql_store, 58)  # right before the failing event
    assert seqs(sql_store) == list(range(59))  # the read model is current up to it


def test_a_skip_after_a_failed_batch_passes_over_that_one_event_only(
    sql_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbered(sql_store, 100)
    monkeypatch.setenv("EK_POISON", "59")
    run_until_failed(sql_store, Seqs())
    poison = position_of(sql_store, 59)
    skip_event(sql_store, "test.seqs", poison, reason="ticket 7", by="alice")
    run(sql_store, Seqs())
    assert seqs(sql_store) == log_seqs(sql_store, {poison}) == [s for s in range(100) if s != 59]
    [status] = projection_status(sql_store)
    assert (status.state, status.position, status.error) == (
        "stopped",
        sql_store.head_position(),
        None,
    )
    [skip] = status.skips
    assert (skip.position, skip.by, skip.reason) == (poison, "alice", "ticket 7")
    assert skip.error == "ValueError: cannot handle seq 59"
    assert skip.after == position_of(sql_store, 58)


def test_a_skip_from_the_cli_passes_over_that_one_event_only_and_status_shows_it(
    sql_url: str, sql_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbered(sql_store, 60)
    monkeypatch.setenv("EK_POISON", "29")
    monkeypatch.chdir(__import__("pathlib").Path(__file__).parent)
    cli = CliRunner()
    result = cli.invoke(
        main,
        [
            "--store",
            sql_url,
            "projections",
            "run",
            "failing_projections:Seqs",
            "--until-caught-up",
            "--quiet",
        ],
    )
    assert result.exit_code == 1, result.output  # a projection failed
    assert "test.seqs failed at position" in result.output
    poison = position_of(sql_store, 29)
    assert seqs(sql_store) == list(range(29))
    result = cli.invoke(
        main,
        [
            "--store",
            sql_url,
            "projections",
            "skip",
            "test.seqs",
            str(poison),
            "--reason",
            "bad",
            "--by",
            "bob",
        ],
    )
    assert result.exit_code == 0, result.output
    monkeypatch.delenv("EK_POISON")
    result = cli.invoke(
        main,
        [
            "--store",
            sql_url,
            "projections",
            "run",
            "failing_projections:Seqs",
            "--until-caught-up",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert seqs(sql_store) == log_seqs(sql_store, {poison}) == [s for s in range(60) if s != 29]
    result = cli.invoke(main, ["--store", sql_url, "projections", "status", "--json"])
    assert result.exit_code == 0, result.output
    [row] = __import__("json").loads(result.output)
    [skip] = row["skips"]
    assert (skip["position"], skip["by"], skip["reason"]) == (poison, "bob", "bad")
    result = cli.invoke(main, ["--store", sql_url, "projections", "status"], env={"COLUMNS": "200"})
    assert f"1 skipped (last: {poison} by bob: bad)" in result.output


def test_a_skip_is_refused_until_the_events_before_it_are_committed(
    sql_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbered(sql_store, 10)
    monkeypatch.setenv("EK_POISON", "5")
    run_until_failed(sql_store, Seqs())
    poison = position_of(sql_store, 5)
    with sql_store.transaction() as tx:  # as if an older runner had left it at the batch start
        tx.save_checkpoint("test.seqs", 0, expected=tx.checkpoint("test.seqs"))
        tx.execute("DELETE FROM seqs__g1")
    with pytest.raises(ValidationError, match="retry it first"):
        skip_event(sql_store, "test.seqs", poison, reason="no")
    retry_projection(sql_store, "test.seqs")
    run_until_failed(sql_store, Seqs())
    skip_event(sql_store, "test.seqs", poison, reason="now")
    monkeypatch.delenv("EK_POISON")
    run(sql_store, Seqs())
    assert seqs(sql_store) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
