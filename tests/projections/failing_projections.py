"""Projections of the failure tests, importable by runner processes too (``MODULE:CLASS``).

Their behaviour is set by environment variables, so a test and the runner processes it starts
agree on it:

- ``EK_POISON``: comma-separated ``seq`` values a handler refuses (raises ValueError on);
- ``EK_MARK``: a file the handler creates when it reaches ``EK_FREEZE_AT`` (Freezer) or its
  first event (Sleeper), so the test knows the process is inside a batch;
- ``EK_FREEZE_AT``: the ``seq`` at which a Freezer pauses inside its batch (once per test:
  only the process that creates ``EK_MARK`` pauses).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from eventkeep import RawEvent
from eventkeep.projections import HandlerContext, Projection, SQLProjection, handles


def poison() -> set[int]:
    return {int(seq) for seq in os.environ.get("EK_POISON", "").split(",") if seq.strip()}


class Seqs(SQLProjection):
    """One row per Numbered event: its seq and position (a second apply breaks the key)."""

    name = "test.seqs"
    tables = ("seqs",)
    schema = ("CREATE TABLE {seqs} (seq INTEGER PRIMARY KEY, position INTEGER NOT NULL)",)

    @handles("Numbered")
    def numbered(self, event: RawEvent, ctx: HandlerContext) -> None:
        seq = int(event.data["seq"])
        if seq in poison():
            raise ValueError(f"cannot handle seq {seq}")
        ctx.execute("INSERT INTO {seqs} VALUES (?, ?)", (seq, ctx.position))


class Freezer(Seqs):
    """Seqs that pauses inside its batch at ``EK_FREEZE_AT`` (after its SQL, so the
    transaction holds its locks), leaving a mark: the test then freezes the process."""

    name = "test.freezer"
    batch_size = 50

    def numbered(self, event: RawEvent, ctx: HandlerContext) -> None:
        super().numbered(event, ctx)
        if int(event.data["seq"]) != int(os.environ.get("EK_FREEZE_AT", "-1")):
            return
        try:
            fd = os.open(os.environ["EK_MARK"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # another runner froze here already
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(2.0)  # the test stops the process during this pause


class Sleeper(Seqs):
    """A handler that hangs: it leaves its mark, then sleeps for ever."""

    name = "test.sleeper"

    def numbered(self, event: RawEvent, ctx: HandlerContext) -> None:
        Path(os.environ["EK_MARK"]).write_text(str(os.getpid()))
        while True:
            time.sleep(3600)


class Healthy(SQLProjection):
    """A projection that never fails: it counts Numbered events."""

    name = "test.healthy"
    tables = ("healthy",)
    schema = ("CREATE TABLE {healthy} (seq INTEGER PRIMARY KEY)",)

    @handles("Numbered")
    def numbered(self, event: RawEvent, ctx: HandlerContext) -> None:
        ctx.execute("INSERT INTO {healthy} VALUES (?)", (int(event.data["seq"]),))


class BrokenReset(Projection):
    """An external read model whose ``reset()`` (called by an in-place rebuild) has a bug."""

    name = "test.broken_reset"
    transactional = False

    @handles("Numbered")
    def numbered(self, event: RawEvent, ctx: HandlerContext) -> None:
        pass

    def reset(self) -> None:
        raise KeyError("no such index")


class Slow(Seqs):
    """Seqs whose handler takes at least 20 ms an event, with batches cut after 50 ms."""

    name = "test.slow"
    tables = ("slow",)
    schema = ("CREATE TABLE {slow} (seq INTEGER PRIMARY KEY, position INTEGER NOT NULL)",)
    batch_size = 50
    max_batch_seconds = 0.05

    def numbered(self, event: RawEvent, ctx: HandlerContext) -> None:
        time.sleep(0.02)
        ctx.execute("INSERT INTO {slow} VALUES (?, ?)", (int(event.data["seq"]), ctx.position))


class Parking(Seqs):
    """Seqs with a dead letter: a failing event is parked and the projection goes on."""

    name = "test.parking"
    park_failures = True


class Ordered(SQLProjection):
    """Parks failing events, and later events of their stream behind them; ``ord`` records
    the order in which rows were written."""

    name = "test.ordered"
    park_failures = True
    park_stream_order = True
    tables = ("ordered",)
    schema = (
        "CREATE TABLE {ordered} (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, "
        "ord INTEGER NOT NULL)",
    )

    @handles("Numbered")
    def numbered(self, event: RawEvent, ctx: HandlerContext) -> None:
        seq = int(event.data["seq"])
        if seq in poison():
            raise ValueError(f"cannot handle seq {seq}")
        ctx.execute(
            "INSERT INTO {ordered} VALUES (?, ?, (SELECT count(*) FROM {ordered}))",
            (seq, ctx.recorded.stream_id if ctx.recorded else ""),
        )
