"""The benchmark suite runs its systems side by side, in turns (``workloads.run_side_by_side``):
every system does every workload's work, chunk by chunk, with a different system first in each
chunk, and each system's measurement counts only its own calls."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from benchmarks.concurrency import make_subject
from benchmarks.systems.base import Target, reference_for
from benchmarks.workloads import QUICK, SUITE, run_side_by_side

SIZES = replace(QUICK, accounts=20, commands=2, batches=10, rehydrate=10, log_events=500)


class Logged:
    """An eventkeep memory subject that logs which subject made each timed call."""

    def __init__(self, name: str, log: list[tuple[str, str, Any]]) -> None:
        self.name, self.log = name, log
        self.inner = make_subject("eventkeep", Target("memory"))

    def __getattr__(self, method: str) -> Any:
        call = getattr(self.inner, method)

        def logged(*args: Any) -> Any:
            self.log.append((self.name, method, args[0] if args else None))
            return call(*args)

        return logged


@pytest.fixture
def log() -> list[tuple[str, str, Any]]:
    return []


def test_every_subject_does_every_call_of_every_workload(log: list[tuple[str, str, Any]]) -> None:
    names = ["a", "b", "c"]
    subjects: dict[str, Any] = {name: Logged(name, log) for name in names}
    results = run_side_by_side(
        subjects, SIZES, reference_for(256), dict.fromkeys(names, set(SUITE) - {"command_other"})
    )
    for name in names:
        mine = [(method, arg) for who, method, arg in log if who == name]
        creates = [arg for method, arg in mine if method == "create"]
        assert creates == [f"acc{n}" for n in range(SIZES.accounts)]
        assert [m for m, _ in mine].count("command") == SIZES.accounts * SIZES.commands
        assert [m for m, _ in mine].count("create_with") == SIZES.batches + 2  # and the long two
        workloads = [row["workload"] for row in results[name]]
        assert workloads == [
            *("create", "command", "batch", "rehydrate", "read_all", "long", "long_snapshot")
        ]
        assert all(row["value"] > 0 for row in results[name])
        rehydrated = next(row for row in results[name] if row["workload"] == "rehydrate")
        assert rehydrated["unit"] == "aggregates/s"


def test_the_subjects_take_turns_chunk_by_chunk_a_different_one_first_each_time(
    log: list[tuple[str, str, Any]],
) -> None:
    names = ["a", "b", "c"]
    subjects: dict[str, Any] = {name: Logged(name, log) for name in names}
    run_side_by_side(
        subjects, SIZES, reference_for(256), {name: {"create"} for name in names}, turn=1
    )
    who = [name for name, method, _ in log if method == "create"]
    # 20 accounts in 10 chunks of 2: each chunk done by all three before the next one.
    chunks = [who[i : i + 6] for i in range(0, len(who), 6)]
    assert len(chunks) == 10
    firsts = [chunk[0] for chunk in chunks]
    assert firsts == [names[(1 + k) % 3] for k in range(10)]
    for chunk in chunks:
        assert sorted(chunk) == ["a", "a", "b", "b", "c", "c"]
        assert [chunk[0], chunk[2], chunk[4]] == [chunk[1], chunk[3], chunk[5]]


def test_a_subject_reports_only_its_own_workloads_but_creates_what_its_commands_need(
    log: list[tuple[str, str, Any]],
) -> None:
    subjects: dict[str, Any] = {"full": Logged("full", log), "min": Logged("min", log)}
    chosen = {"full": {"create", "command", "batch"}, "min": {"command"}}
    results = run_side_by_side(subjects, SIZES, reference_for(256), chosen)
    assert [row["workload"] for row in results["full"]] == ["create", "command", "batch"]
    assert [row["workload"] for row in results["min"]] == ["command"]
    made = [arg for who, method, arg in log if who == "min" and method == "create"]
    assert len(made) == SIZES.accounts  # its accounts exist before its commands
    assert not [1 for who, method, _ in log if who == "min" and method == "create_with"]
