"""The benchmark report's targets say where the raw floor stands by each goal's own measure, in
the same run: a goal the floor itself misses is marked as lying beyond it."""

from __future__ import annotations

from typing import Any

from benchmarks.report import markdown, summarize, targets


def row(workload: str, backend: str, system: str, value: float, unit: str = "events/s") -> Any:
    return {
        "workload": workload,
        "backend": backend,
        "payload": 256,
        "system": system,
        "value": value,
        "unit": unit,
        "repeat": 0,
    }


def verdict(rows: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [t for t in targets(summarize(rows)) if t["target"] == name]
    return found


def test_a_ratio_goal_the_floor_itself_misses_is_beyond_the_floor() -> None:
    rows = [
        row("command", "sqlite", "eventkeep", 1_500),
        row("command", "sqlite", "eventsourcing", 1_000),
        row("command", "sqlite", "raw", 2_500),  # the floor is 2.5x eventsourcing: 3x is beyond
        row("command", "postgres", "eventkeep", 800),
        row("command", "postgres", "eventsourcing", 300),
        row("command", "postgres", "raw", 1_200),  # 4x: 3x is within reach
    ]
    sqlite = verdict(rows, "command loop >= 3x eventsourcing (sqlite)")
    assert (sqlite["met"], sqlite["reachable"], sqlite["floor"]) == (False, False, "2.50x")
    postgres = verdict(rows, "command loop >= 3x eventsourcing (postgres)")
    assert (postgres["met"], postgres["reachable"], postgres["floor"]) == (False, True, "4.00x")
    text = markdown(rows, {"date": "today", "machine": "here", "mode": "quick", "repeats": 1}, [])
    assert (
        "| command loop >= 3x eventsourcing (sqlite) | 1.50x | 2.50x | **MISSED** (beyond" in text
    )
    assert "| command loop >= 3x eventsourcing (postgres) | 2.67x | 4.00x | **MISSED** |" in text


def test_times_and_rates_compare_with_the_floors_own() -> None:
    rows = [
        row("long", "sqlite", "eventkeep", 40.0, unit="ms"),
        row("long", "sqlite", "raw", 25.0, unit="ms"),  # the floor is within 30 ms
        row("catchup", "sqlite", "eventkeep", 150_000),
        row("catchup", "sqlite", "raw", 120_000),  # the floor is below 200,000/s
    ]
    long = verdict(rows, "10,000-event aggregate, no snapshot: <= 30 ms (sqlite)")
    assert (long["met"], long["reachable"]) == (False, True)
    catch = verdict(rows, "projection catch-up >= 200,000 events/s (sqlite)")
    assert (catch["met"], catch["reachable"], catch["floor"]) == (False, False, "120,000/s")


def test_a_goal_not_measured_says_so() -> None:
    found = verdict([], "batch append >= 2x eventsourcing (sqlite)")
    assert found["met"] is None
    assert found["measured"] == "not measured"
