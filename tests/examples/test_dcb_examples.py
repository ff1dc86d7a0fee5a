"""The DCB examples (eventkeep.examples.dcb) on every backend: unique usernames, course
subscriptions with a capacity and a per-student limit, gap-free invoice numbers."""

from __future__ import annotations

import threading

import pytest

from eventkeep import EventStore, Query, QueryItem
from eventkeep.examples.dcb import (
    MAX_COURSES,
    CourseError,
    InvoiceCreated,
    StudentSubscribed,
    UsernameError,
    change_capacity,
    claim_username,
    create_invoice,
    define_course,
    release_username,
    subscribe,
)


def test_a_username_is_claimed_once_released_and_claimed_again(store: EventStore) -> None:
    claim_username(store, "ann", "user-1")
    with pytest.raises(UsernameError, match="taken"):
        claim_username(store, "ann", "user-2")
    claim_username(store, "bob", "user-2")
    with pytest.raises(UsernameError, match="not held"):
        release_username(store, "ann", "user-2")
    release_username(store, "ann", "user-1")
    claim_username(store, "ann", "user-2")
    holders = [e.event.user_id for e in store.read(Query([QueryItem(tags=["username:ann"])]))]
    assert holders == ["user-1", "user-1", "user-2"]
    assert store.verify().ok


def test_courses_keep_their_capacity_and_students_their_limit(store: EventStore) -> None:
    define_course(store, "math", 2)
    with pytest.raises(CourseError, match="exists"):
        define_course(store, "math", 5)
    with pytest.raises(CourseError, match="does not exist"):
        subscribe(store, "ann", "art")
    subscribe(store, "ann", "math")
    with pytest.raises(CourseError, match="already"):
        subscribe(store, "ann", "math")
    subscribe(store, "bob", "math")
    with pytest.raises(CourseError, match="full"):
        subscribe(store, "cid", "math")
    change_capacity(store, "math", 3)
    subscribe(store, "cid", "math")
    with pytest.raises(CourseError, match="has 3 students"):
        change_capacity(store, "math", 2)
    for n in range(MAX_COURSES):
        define_course(store, f"c{n}", 10)
    for n in range(MAX_COURSES - 1):
        subscribe(store, "ann", f"c{n}")
    with pytest.raises(CourseError, match=f"takes {MAX_COURSES} courses"):
        subscribe(store, "ann", f"c{MAX_COURSES - 1}")
    subscribed = store.read(Query([QueryItem(types=[StudentSubscribed], tags=["student:ann"])]))
    assert len(subscribed) == MAX_COURSES


def test_invoice_numbers_have_no_gaps_even_when_created_at_once(store: EventStore) -> None:
    numbers: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def create_many() -> None:
        try:
            for _ in range(10):
                number = create_invoice(store, "acme", 100)
                with lock:
                    numbers.append(number)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=create_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(numbers) == list(range(1, 41))
    stored = [
        e.event.invoice_number for e in store.read(Query([QueryItem(types=[InvoiceCreated])]))
    ]
    assert stored == list(range(1, 41))
