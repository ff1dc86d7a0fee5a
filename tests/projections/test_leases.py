"""Leases: one active runner per projection; a standby takes over, fenced, without a gap.

Leases expire by the clock, so these tests involve time; but none assumes how fast it runs. A
lease that must hold lasts far longer than any pause of the process (60 s); one that must run
out is waited for until it has, as the status shows, never assumed to have.
"""

from __future__ import annotations

import time

import pytest
from projection_harness import wait_until
from test_projections import Collected, numbered

from eventkeep import EventStore, RawEvent
from eventkeep.projections import Runner, projection_status


@pytest.fixture(autouse=True)
def _clean() -> None:
    Collected.seen = []


def test_only_one_of_two_runners_holds_a_projection(store: EventStore) -> None:
    numbered(store, 5)
    first = Runner(store, [Collected()], owner="host:1:first", lease_ttl=60)
    second = Runner(store, [Collected()], owner="host:2:second", lease_ttl=60)
    for _ in range(3):
        first.step()
        second.step()
    assert first.jobs[0].active
    assert not second.jobs[0].active
    assert [seq for _, seq in Collected.seen] == [0, 1, 2, 3, 4]
    assert projection_status(store)[0].owner == "host:1:first"


def test_a_standby_takes_over_when_the_lease_expires_without_skip_or_repeat(
    store: EventStore,
) -> None:
    numbered(store, 3)
    first = Runner(store, [Collected()], owner="host:1:first", lease_ttl=0.3)
    second = Runner(store, [Collected()], owner="host:2:second", lease_ttl=0.3)
    first.step()
    second.step()
    numbered(store, 2, start=3)  # the first runner dies before it sees these
    # The standby takes over once the lease has run out (however long that takes here) ...
    deadline = time.monotonic() + 60
    while not second.jobs[0].active and time.monotonic() < deadline:
        time.sleep(0.05)
        second.step()
    assert second.jobs[0].active
    # ... and carries on exactly where the first one stopped.
    assert second.run(until_caught_up=True, timeout=60)
    assert [seq for _, seq in Collected.seen] == [0, 1, 2, 3, 4]


def test_a_runner_that_lost_its_lease_cannot_commit_and_stands_by(store: EventStore) -> None:
    numbered(store, 2)
    old = Runner(store, [Collected()], owner="host:1:old", lease_ttl=0.2)
    old.step()
    # old is paused past its lease (the status shows a lease that ran out as nobody's) ...
    wait_until(lambda: projection_status(store)[0].owner is None, timeout=60, what="expiry")
    new = Runner(store, [Collected()], owner="host:2:new", lease_ttl=60)
    new.step()  # ... and the lease changes hands (a new fence)
    assert new.jobs[0].active
    numbered(store, 1, start=2)
    old.jobs[0]._renew_at = time.monotonic() + 60  # old wakes up believing it holds the lease
    old.step()  # handles the event, but its commit is refused: the fence moved on
    assert not old.jobs[0].active
    new.step()
    assert projection_status(store)[0].position == 3
    assert projection_status(store)[0].owner == "host:2:new"


def test_a_clean_stop_releases_the_lease_for_an_immediate_takeover(store: EventStore) -> None:
    store.append("x-1", [RawEvent("Numbered", {"seq": 0})])
    first = Runner(store, [Collected()], owner="host:1:first", lease_ttl=60)
    assert first.run(until_caught_up=True, timeout=10)
    second = Runner(store, [Collected()], owner="host:2:second", lease_ttl=60)
    second.step()
    assert second.jobs[0].active


def test_a_standby_says_once_whom_it_waits_for(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    numbered(store, 2)
    first = Runner(store, [Collected()], owner="host:1:first", lease_ttl=60)
    second = Runner(store, [Collected()], owner="host:2:second", lease_ttl=60)
    first.step()
    with caplog.at_level("INFO", logger="eventkeep.projections"):
        for _ in range(3):
            second.jobs[0]._renew_at = 0.0  # its next turn is due now, not in STANDBY_POLL
            second.step()
    waiting = [r.getMessage() for r in caplog.records if "standing by" in r.getMessage()]
    assert len(waiting) == 1, waiting
    assert "host:1:first holds its lease" in waiting[0]
