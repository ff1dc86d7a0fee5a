"""Races of conditional appends (DCB) between real OS processes, for the SQLite and PostgreSQL
tests: every process reads, all of them wait at a barrier (so that every one decides on the
same, soon stale, facts), then each appends under its condition.

- ``claim_usernames``: every process claims the same username each round; exactly one append
  may succeed, the others must fail with ``AppendConditionError``.
- ``subscribe_students``: processes subscribe students to courses with a capacity, a student
  taking at most ``STUDENT_LIMIT`` courses; a refused append is decided again on fresh facts.
"""

from __future__ import annotations

import json
import multiprocessing
import random
from pathlib import Path
from typing import Any

import eventkeep
from eventkeep import AppendConditionError, NewEvent, Query, QueryItem, RawEvent

PROCESSES = 8
COURSES = {"c0": 5, "c1": 8, "c2": 3, "c3": 6}
STUDENTS = [f"s{n}" for n in range(12)]
STUDENT_LIMIT = 2
BARRIER_TIMEOUT = 120.0


def claim_usernames(url: str, me: int, rounds: int, barrier: Any, out: str) -> None:
    results: list[dict[str, Any]] = []
    with eventkeep.open_store(url) as store:
        for n in range(rounds):
            query = Query([QueryItem(types=["UsernameClaimed"], tags=[f"username:user{n}"])])
            seen = store.read(query)
            barrier.wait(BARRIER_TIMEOUT)
            outcome = "taken"
            if not seen.events:
                event = NewEvent(
                    RawEvent("UsernameClaimed", {"username": f"user{n}", "by": me}),
                    tags=[f"username:user{n}"],
                )
                try:
                    store.append_events([event], condition=seen.condition(query))
                    outcome = "won"
                except AppendConditionError:
                    outcome = "lost"
            results.append({"round": n, "outcome": outcome})
    Path(out).write_text(json.dumps(results))


def course_query(student: str, course: str) -> Query:
    return Query(
        [
            QueryItem(types=["CourseDefined", "StudentSubscribed"], tags=[f"course:{course}"]),
            QueryItem(types=["StudentSubscribed"], tags=[f"student:{student}"]),
        ]
    )


def decide_subscription(events: list[Any], student: str, course: str) -> str | None:
    """None when the student may subscribe, else why not."""
    capacity = None
    in_course = 0
    of_student = 0
    for e in events:
        if e.type == "CourseDefined":
            capacity = e.data["capacity"]
        elif e.type == "StudentSubscribed":
            if e.data["course"] == course:
                in_course += 1
                if e.data["student"] == student:
                    return "already subscribed"
            if e.data["student"] == student:
                of_student += 1
    if capacity is None:
        return "no such course"
    if in_course >= capacity:
        return "course full"
    if of_student >= STUDENT_LIMIT:
        return "student limit"
    return None


def subscribe_students(url: str, me: int, rounds: int, barrier: Any, out: str) -> None:
    rng = random.Random(me)
    results: list[dict[str, Any]] = []
    with eventkeep.open_store(url) as store:
        for _ in range(rounds):
            student, course = rng.choice(STUDENTS), rng.choice(sorted(COURSES))
            query = course_query(student, course)
            seen = store.read(query)
            barrier.wait(BARRIER_TIMEOUT)
            retries = 0
            while True:
                refusal = decide_subscription(seen.events, student, course)
                if refusal is not None:
                    results.append({"student": student, "course": course, "refused": refusal})
                    break
                event = NewEvent(
                    RawEvent("StudentSubscribed", {"student": student, "course": course}),
                    tags=[f"student:{student}", f"course:{course}"],
                )
                try:
                    written = store.append_events([event], condition=seen.condition(query))
                except AppendConditionError:
                    retries += 1
                    seen = store.read(query)
                    continue
                results.append(
                    {
                        "student": student,
                        "course": course,
                        "position": written.position,
                        "retries": retries,
                    }
                )
                break
    Path(out).write_text(json.dumps(results))


def define_courses(store: eventkeep.EventStore) -> None:
    for course, capacity in COURSES.items():
        store.append_events(
            [
                NewEvent(
                    RawEvent("CourseDefined", {"course": course, "capacity": capacity}),
                    tags=[f"course:{course}"],
                )
            ]
        )


def race(task: Any, url: str, rounds: int, folder: Path) -> list[list[dict[str, Any]]]:
    """Run ``task`` in PROCESSES spawned OS processes; each one's results."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    outs = [folder / f"race-{n}.json" for n in range(PROCESSES)]
    procs = [
        context.Process(target=task, args=(url, n, rounds, barrier, str(outs[n])))
        for n in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(600)
    for proc in procs:
        if proc.is_alive():
            proc.kill()
    assert [proc.exitcode for proc in procs] == [0] * PROCESSES
    return [json.loads(out.read_text()) for out in outs]


def check_usernames(store: eventkeep.EventStore, results: list[Any], rounds: int) -> None:
    for n in range(rounds):
        outcomes = [r[n]["outcome"] for r in results]
        assert outcomes.count("won") == 1, (n, outcomes)
        # Every process read before anyone appended: all of them tried, all but one lost.
        assert outcomes.count("lost") == PROCESSES - 1, (n, outcomes)
        query = Query([QueryItem(tags=[f"username:user{n}"])])
        assert len(store.read(query)) == 1
    assert store.verify().ok


def check_courses(store: eventkeep.EventStore, results: list[Any]) -> int:
    """Never over a course's capacity or a student's limit, no subscription lost or doubled;
    returns how many appends lost a race and were decided again."""
    stored = store.read(Query([QueryItem(types=["StudentSubscribed"])])).events
    pairs = [(e.data["student"], e.data["course"]) for e in stored]
    assert len(set(pairs)) == len(pairs), "a student subscribed twice to a course"
    for course, capacity in COURSES.items():
        assert sum(1 for _, c in pairs if c == course) <= capacity
    for student in STUDENTS:
        assert sum(1 for s, _ in pairs if s == student) <= STUDENT_LIMIT
    acked = sorted(r["position"] for rs in results for r in rs if "position" in r)
    assert acked == sorted(e.position for e in stored), "an acknowledged subscription is missing"
    assert store.verify().ok
    return sum(r.get("retries", 0) for rs in results for r in rs)
