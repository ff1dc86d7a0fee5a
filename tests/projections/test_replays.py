"""Replays without side effects: during a rebuild, or a run after a reset, handlers and hooks
see ``ctx.replaying``; reactors skip their effects then unless they opt in."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from eventkeep import EventStore, RawEvent
from eventkeep.projections import (
    HandlerContext,
    Projection,
    Reactor,
    Runner,
    SQLProjection,
    handles,
    projection_status,
    request_rebuild,
    reset_projection,
)


class Mailer(Reactor):
    """ "Sends an email" per event: a line in the outbox file."""

    name = "test.mailer"
    outbox: ClassVar[Path] = Path("/nonexistent")

    @handles("Numbered")
    def numbered(self, event: RawEvent, ctx: HandlerContext) -> None:
        with self.outbox.open("a") as out:
            out.write(f"{event.data['seq']} replaying={ctx.replaying}\n")


class LoudMailer(Mailer):
    """A reactor that opts in: its effects run again on a replay."""

    name = "test.loud_mailer"
    replay_effects = True


class Flagged(SQLProjection):
    """Keeps, per event, whether it was handled as a replay; and what its hooks saw."""

    name = "test.flagged"
    tables = ("flagged",)
    schema = ("CREATE TABLE {flagged} (seq INTEGER PRIMARY KEY, replaying INTEGER NOT NULL)",)
    hooks: ClassVar[list[tuple[str, int, bool]]] = []

    @handles("Numbered")
    def numbered(self, event: RawEvent, ctx: HandlerContext) -> None:
        ctx.execute("INSERT INTO {flagged} VALUES (?, ?)", (event.data["seq"], int(ctx.replaying)))

    def setup(self, ctx: HandlerContext) -> None:
        type(self).hooks.append(("setup", ctx.generation, ctx.replaying))
        super().setup(ctx)


def numbered(store: EventStore, count: int, start: int = 0) -> None:
    store.append("n-1", [RawEvent("Numbered", {"seq": i}) for i in range(start, start + count)])


def run(store: EventStore, *projections: Projection) -> None:
    assert Runner(store, projections, lease_ttl=5.0).run(until_caught_up=True, timeout=30)


@pytest.fixture
def outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "outbox"
    monkeypatch.setattr(Mailer, "outbox", path)
    return path


def test_a_reset_reactor_does_not_send_its_emails_again(
    sql_store: EventStore, outbox: Path
) -> None:
    numbered(sql_store, 3)
    run(sql_store, Mailer())
    reset_projection(sql_store, Mailer.name)
    numbered(sql_store, 2, start=3)
    run(sql_store, Mailer())
    assert outbox.read_text().splitlines() == [f"{seq} replaying=False" for seq in range(5)]
    [status] = projection_status(sql_store)
    assert status.position == sql_store.head_position()


def test_a_reactor_that_opts_in_runs_its_effects_again_knowing_it_replays(
    sql_store: EventStore, outbox: Path
) -> None:
    numbered(sql_store, 2)
    run(sql_store, LoudMailer())
    reset_projection(sql_store, LoudMailer.name)
    numbered(sql_store, 1, start=2)
    run(sql_store, LoudMailer())
    assert outbox.read_text().splitlines() == [
        "0 replaying=False",
        "1 replaying=False",
        "0 replaying=True",
        "1 replaying=True",
        "2 replaying=False",
    ]


def test_a_rebuild_tells_handlers_and_hooks_they_are_replaying(sql_store: EventStore) -> None:
    Flagged.hooks = []
    numbered(sql_store, 3)
    run(sql_store, Flagged())
    request_rebuild(sql_store, Flagged.name)
    runner = Runner(sql_store, [Flagged()], lease_ttl=5.0)
    runner.step()  # takes the lease and starts the rebuild (into generation 2)
    numbered(sql_store, 1, start=3)  # a new event, appended during the rebuild
    assert runner.run(until_caught_up=True, timeout=30)
    with sql_store.transaction() as tx:
        rows = tx.execute("SELECT seq, replaying FROM flagged ORDER BY seq")
    assert [(int(s), int(r)) for s, r in rows] == [(0, 1), (1, 1), (2, 1), (3, 0)]
    assert Flagged.hooks == [("setup", 1, False), ("setup", 2, True)]
