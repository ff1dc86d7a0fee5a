"""Snapshots: written after saves by policy, never failing a save, ignored when stale."""

from __future__ import annotations

import logging
import random
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

import eventkeep
from eventkeep import (
    Aggregate,
    ConfigurationError,
    Decider,
    Event,
    EventStore,
    Every,
    Repository,
    applies,
)
from eventkeep.examples.bank import BankAccount


class Tallied(Event):
    __event_type__ = "snaptest.Tallied"
    n: int = 1


class Tally(Aggregate):
    """Counts how many events its handler applied (records and replays alike)."""

    __category__ = "snaptesttally"
    __snapshot_every__ = 10
    applied: ClassVar[int] = 0

    total: int = 0

    def add(self, n: int = 1) -> None:
        self.record(Tallied(n=n))

    @applies(Tallied)
    def _tallied(self, event: Tallied) -> None:
        Tally.applied += 1
        self.total += event.n


class TallyV2(Tally):
    """The same streams with a new state schema version: older snapshots are stale."""

    __category__ = "snaptesttally2"
    __state_version__ = 2
    __state_type__ = "Tally"


class Unencodable(Aggregate):
    __category__ = "snaptestbad"
    __snapshot_every__ = 1
    handle: Any = None

    @applies(Tallied)
    def _tallied(self, event: Tallied) -> None:
        self.handle = object()


class Sloppy(Aggregate):
    """Keeps state in an attribute it does not declare: snapshots would lose it."""

    __category__ = "snaptestsloppy"
    __snapshot_every__ = 1

    @applies(Tallied)
    def _tallied(self, event: Tallied) -> None:
        self.hidden = getattr(self, "hidden", 0) + event.n


def replays(load: Any) -> tuple[Any, int]:
    """Run ``load()`` and count the events its handlers applied."""
    Tally.applied = 0
    aggregate = load()
    return aggregate, Tally.applied


def save_tallies(tallies: Repository[Tally], name: str, counts: list[int]) -> Tally:
    tally = tallies.get_or_create(name)
    for count in counts:
        for _ in range(count):
            tally.add()
        tallies.save(tally)
    return tally


def snapshot_version(store: EventStore, stream_id: str) -> int:
    snapshot = store.load_snapshot(stream_id)
    return snapshot.version if snapshot else 0


def test_a_snapshot_is_written_after_a_save_once_the_policy_is_due(store: EventStore) -> None:
    tallies = Repository(store, Tally)
    save_tallies(tallies, "t1", [9])
    assert store.load_snapshot("snaptesttally-t1") is None
    for count, expected in ((1, 10), (5, 10), (5, 20)):
        tally = save_tallies(tallies, "t1", [count])
        assert snapshot_version(store, "snaptesttally-t1") == expected
    assert tally.version == 20
    snapshot = store.load_snapshot("snaptesttally-t1")
    assert snapshot is not None
    assert (snapshot.version, snapshot.type, snapshot.schema_version) == (20, "Tally", 1)
    assert msgspec.json.decode(snapshot.data) == {"total": 20}
    assert store.load_snapshot("snaptesttally-t1", max_version=19).version == 10  # type: ignore[union-attr]


def test_a_load_replays_only_the_events_after_the_latest_snapshot(store: EventStore) -> None:
    tallies = Repository(store, Tally)
    save_tallies(tallies, "t1", [12, 3])
    tally, replayed = replays(lambda: tallies.load("t1"))
    assert (tally.total, tally.version, replayed) == (15, 15, 3)


def test_loading_a_10000_event_aggregate_with_snapshots_replays_at_most_n_events(
    store: EventStore,
) -> None:
    every = Tally.__snapshot_every__
    assert isinstance(every, int)
    store.append("snaptesttally-big", [Tallied()] * 10_000, expected_version=0)
    tallies = Repository(store, Tally)
    tally, replayed = replays(lambda: tallies.load("big"))
    assert (tally.total, replayed) == (10_000, 10_000)  # no snapshot yet: the first load ...
    assert snapshot_version(store, "snaptesttally-big") == 10_000  # ... writes one
    rng = random.Random(7)
    for _ in range(25):
        save_tallies(tallies, "big", [rng.randint(1, 2 * every)])
        tally, replayed = replays(lambda: tallies.load("big"))
        assert replayed <= every
        assert replayed == tally.version - snapshot_version(store, "snaptesttally-big")
        assert tally.total == tally.version


def test_a_load_that_replayed_enough_events_writes_a_snapshot(store: EventStore) -> None:
    store.append("snaptesttally-t1", [Tallied()] * 9)
    tallies = Repository(store, Tally)
    tallies.load("t1")
    assert store.load_snapshot("snaptesttally-t1") is None
    store.append("snaptesttally-t1", [Tallied()])
    tallies.load("t1")
    assert snapshot_version(store, "snaptesttally-t1") == 10
    tallies.load("t1", at_version=10)  # temporal loads never write snapshots
    store.delete_snapshots()
    tallies.load("t1", at_version=10)
    assert store.load_snapshot("snaptesttally-t1") is None


def test_a_failing_snapshot_write_never_fails_the_save(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Repository(store, Unencodable)
    aggregate = broken.create("b1")
    aggregate.record(Tallied())
    with caplog.at_level(logging.WARNING, logger="eventkeep.domain.snapshots"):
        results = broken.save(aggregate)
    assert results[0].version == 1
    assert store.stream_version("snaptestbad-b1") == 1
    assert store.load_snapshot("snaptestbad-b1") is None
    assert "could not save a snapshot of snaptestbad-b1 at version 1" in caplog.text
    assert broken.load("b1").version == 1


def test_a_snapshot_write_refused_by_the_database_never_fails_the_save(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "snapshots-refused.db"
    with eventkeep.open_store(f"sqlite:///{path}") as store:
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TRIGGER refuse_snapshots BEFORE INSERT ON snapshots "
                "BEGIN SELECT RAISE(ABORT, 'disk full, say'); END"
            )
        tallies = Repository(store, Tally)
        with caplog.at_level(logging.WARNING, logger="eventkeep.domain.snapshots"):
            tally = save_tallies(tallies, "t1", [10])
        assert tally.version == store.stream_version("snaptesttally-t1") == 10
        assert "could not save a snapshot" in caplog.text
        assert "disk full, say" in caplog.text
        assert tallies.load("t1").total == 10


def test_state_that_is_not_a_declared_field_is_never_snapshotted(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    sloppy = Repository(store, Sloppy)
    aggregate = sloppy.create("s1")
    aggregate.record(Tallied(n=4))
    with caplog.at_level(logging.WARNING, logger="eventkeep.domain.snapshots"):
        sloppy.save(aggregate)
    assert store.load_snapshot("snaptestsloppy-s1") is None
    assert "not a declared field (hidden)" in caplog.text
    assert sloppy.load("s1").hidden == 4


def test_a_snapshot_of_an_older_state_version_is_ignored_and_rewritten(
    store: EventStore,
) -> None:
    save_tallies(Repository(store, Tally), "t1", [10, 4])
    assert store.load_snapshot("snaptesttally-t1").schema_version == 1  # type: ignore[union-attr]
    upgraded = Repository(store, TallyV2, category="snaptesttally")
    tally, replayed = replays(lambda: upgraded.load("t1"))
    assert (tally.total, replayed) == (14, 14)
    snapshot = store.load_snapshot("snaptesttally-t1")
    assert snapshot is not None
    assert (snapshot.version, snapshot.schema_version) == (14, 2)
    tally, replayed = replays(lambda: upgraded.load("t1"))
    assert (tally.total, replayed) == (14, 0)


@pytest.mark.parametrize(
    ("state_type", "data"),
    [("SomethingElse", b'{"total": 99}'), ("Tally", b'{"total": "many"}'), ("Tally", b"{")],
)
def test_a_snapshot_that_does_not_fit_is_ignored(
    store: EventStore, state_type: str, data: bytes
) -> None:
    save_tallies(Repository(store, Tally, snapshots=False), "t1", [6])
    store.save_snapshot("snaptesttally-t1", 5, state_type, 1, data)
    tally, replayed = replays(lambda: Repository(store, Tally).load("t1"))
    assert (tally.total, replayed) == (6, 6)


def test_rebuild_rewrites_the_snapshots_of_a_category(store: EventStore) -> None:
    unsnapshotted = Repository(store, Tally, snapshots=False)
    save_tallies(unsnapshotted, "t1", [25])
    save_tallies(unsnapshotted, "t2", [3])
    store.save_snapshot("snaptesttally-t1", 2, "Tally", 1, b'{"total": -1}')  # wrong, say
    store.save_snapshot("elsewhere-x", 1, "Other", 1, b"{}")
    report = Repository(store, Tally).rebuild_snapshots()
    assert report == eventkeep.RebuildReport("snaptesttally", streams=2, written=1, deleted=1)
    assert snapshot_version(store, "snaptesttally-t1") == 25
    assert store.load_snapshot("snaptesttally-t2") is None
    assert store.load_snapshot("elsewhere-x") is not None
    tally, replayed = replays(lambda: Repository(store, Tally).load("t1"))
    assert (tally.total, replayed) == (25, 0)


def test_rebuild_needs_a_snapshot_policy(store: EventStore) -> None:
    with pytest.raises(ConfigurationError, match="no snapshot policy"):
        Repository(store, Tally, snapshots=False).rebuild_snapshots()


def test_snapshots_false_neither_reads_nor_writes_snapshots(store: EventStore) -> None:
    save_tallies(Repository(store, Tally), "t1", [10])
    plain = Repository(store, Tally, snapshots=False)
    _tally, replayed = replays(lambda: plain.load("t1"))
    assert replayed == 10
    save_tallies(plain, "t2", [30])
    assert store.load_snapshot("snaptesttally-t2") is None


def test_the_policy_can_be_overridden_per_repository(store: EventStore) -> None:
    accounts = Repository(store, BankAccount, snapshot_every=2)
    account = accounts.create("alice")
    account.open(owner="Alice")
    account.deposit(Decimal("1.00"))
    accounts.save(account)
    assert snapshot_version(store, "bankaccount-alice") == 2
    assert accounts.load("alice").balance == Decimal("1.00")


class AtMultiplesOf7:
    def due(self, version: int, snapshot_version: int) -> bool:
        return version // 7 > snapshot_version // 7


def test_a_policy_is_any_object_with_a_due_method(store: EventStore) -> None:
    tallies = Repository(store, Tally, snapshot_every=AtMultiplesOf7())
    save_tallies(tallies, "t1", [3, 3, 3, 3, 3])
    assert snapshot_version(store, "snaptesttally-t1") == 15
    assert store.load_snapshot("snaptesttally-t1", max_version=14).version == 9  # type: ignore[union-attr]
    assert Every(3).due(5, 2)
    assert not Every(3).due(4, 2)
    with pytest.raises(ConfigurationError, match="snapshot_every must be"):
        Repository(store, Tally, snapshot_every="often")  # type: ignore[arg-type]
    with pytest.raises(eventkeep.ValidationError):
        Repository(store, Tally, snapshot_every=0)


class Score(msgspec.Struct, frozen=True):
    points: int = 0


evolved = 0


def evolve_score(state: Score, event: Tallied) -> Score:
    global evolved
    evolved += 1
    return Score(points=state.points + event.n)


def decide_score(command: int, state: Score) -> list[Tallied]:
    return [Tallied(n=command)]


score_decider = Decider(
    initial_state=Score,
    evolve=evolve_score,
    decide=decide_score,
    category="snaptestscore",
    snapshot_every=3,
    state_version=4,
)


def test_a_decider_state_is_snapshotted_too(store: EventStore) -> None:
    global evolved
    scores = Repository(store, score_decider)
    for points in (1, 2, 3, 4):
        scores.handle("s1", points)
    snapshot = store.load_snapshot("snaptestscore-s1")
    assert snapshot is not None
    assert (snapshot.version, snapshot.type, snapshot.schema_version) == (3, "Score", 4)
    evolved = 0
    assert scores.load("s1").state == Score(points=10)
    assert evolved == 1


def test_two_aggregate_types_snapshotting_one_category_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="both snapshot the category 'snaptesttally'"):

        class Rival(Aggregate):
            __category__ = "snaptesttally"
            __snapshot_every__ = 5

    assert eventkeep.domain.aggregate.snapshot_aggregate_for("snaptesttally") is Tally
    assert "snaptesttally" in eventkeep.domain.aggregate.snapshot_categories()
