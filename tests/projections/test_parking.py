"""Parking (an opt-in dead letter): a failing event is set aside with its error and the
projection goes on; with stream order, later events of its stream wait behind it; operators
list, replay and discard parked events (API and CLI)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from failing_projections import Ordered, Parking

from eventkeep import EventStore, RawEvent
from eventkeep.cli import main
from eventkeep.projections import (
    Projection,
    Runner,
    parked_events,
    projection_status,
    replay_parked,
)


def run(store: EventStore, projection: Projection) -> None:
    assert Runner(store, [projection], lease_ttl=5.0).run(until_caught_up=True, timeout=30)


def rows(store: EventStore, sql: str) -> list[tuple[int, ...]]:
    with store.transaction() as tx:
        return [tuple(row) for row in tx.execute(sql)]


def test_a_parked_event_is_set_aside_with_its_error_and_the_projection_goes_on(
    sql_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql_store.append("n-1", [RawEvent("Numbered", {"seq": i}) for i in range(10)])
    monkeypatch.setenv("EK_POISON", "3")
    run(sql_store, Parking())
    assert [r[0] for r in rows(sql_store, "SELECT seq FROM seqs ORDER BY seq")] == [
        0,
        1,
        2,
        4,
        5,
        6,
        7,
        8,
        9,
    ]
    [parked] = parked_events(sql_store, "test.parking")
    assert (parked.position, parked.stream_id, parked.type) == (4, "n-1", "Numbered")
    assert parked.error == "ValueError: cannot handle seq 3"
    [status] = projection_status(sql_store)
    assert (status.parked, status.position, status.error) == (1, sql_store.head_position(), None)
    # Fixed: a replay handles it, and it leaves the list.
    monkeypatch.delenv("EK_POISON")
    replay_parked(sql_store, "test.parking")
    run(sql_store, Parking())
    assert [r[0] for r in rows(sql_store, "SELECT seq FROM seqs ORDER BY seq")] == list(range(10))
    assert parked_events(sql_store, "test.parking") == []


def test_with_stream_order_later_events_of_the_stream_wait_behind_the_parked_one(
    sql_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seq in range(12):  # streams a, b, c, a, b, c, ...
        sql_store.append(f"s-{'abc'[seq % 3]}", [RawEvent("Numbered", {"seq": seq})])
    monkeypatch.setenv("EK_POISON", "3")  # the second event of s-a
    run(sql_store, Ordered())
    handled = rows(sql_store, "SELECT seq FROM ordered ORDER BY seq")
    assert [r[0] for r in handled] == [0, 1, 2, 4, 5, 7, 8, 10, 11]  # s-a stops at 3
    parked = parked_events(sql_store, "test.ordered")
    assert [(p.position, p.behind) for p in parked] == [(4, None), (7, 4), (10, 4)]
    monkeypatch.delenv("EK_POISON")
    replay_parked(sql_store, "test.ordered")
    run(sql_store, Ordered())
    assert parked_events(sql_store, "test.ordered") == []
    stream_a = rows(sql_store, "SELECT seq FROM ordered WHERE stream = 's-a' ORDER BY ord")
    assert [r[0] for r in stream_a] == [0, 3, 6, 9]  # in stream order, after the replay too


def test_parked_events_from_the_cli_listed_replayed_and_discarded(
    sql_url: str, sql_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql_store.append("n-1", [RawEvent("Numbered", {"seq": i}) for i in range(6)])
    monkeypatch.setenv("EK_POISON", "1,4")
    run(sql_store, Parking())
    cli = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = cli.invoke(main, ["--store", sql_url, "projections", *args])
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    listed = json.loads(invoke("parked", "test.parking", "--json"))
    assert [(p["position"], p["error"]) for p in listed] == [
        (2, "ValueError: cannot handle seq 1"),
        (5, "ValueError: cannot handle seq 4"),
    ]
    assert "2 parked" in invoke("status")
    assert "2 parked events." in invoke("parked", "test.parking")
    invoke("discard-parked", "test.parking", "5", "--reason", "test data", "--by", "carol")
    monkeypatch.setenv("EK_POISON", "")
    invoke("replay-parked", "test.parking")
    invoke("replay-parked", "test.parking", "99", code=2)
    run(sql_store, Parking())
    assert [r[0] for r in rows(sql_store, "SELECT seq FROM seqs ORDER BY seq")] == [0, 1, 2, 3, 5]
    [status] = projection_status(sql_store)
    assert status.parked == 0
    [skip] = status.skips
    assert (skip.position, skip.by, skip.reason) == (5, "carol", "test data")
    invoke("discard-parked", "test.parking", "--reason", "x", code=2)  # neither POSITIONS nor --all
