"""Properties of planning a copy's batches ahead (``Predictor`` and ``choose_plan``).

Whatever the source log, the batch size and whatever happened to the target meanwhile, the
plan a batch is written by is the one ``plan_import`` makes from the target as the writer
finds it under its lock (or the same error). And on an uninterrupted copy into an empty
target, every batch after the first few is written by the plan made ahead: the point of it.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkeep.errors import EventkeepError
from eventkeep.store.hashing import GENESIS, ChainRow, chain_hash
from eventkeep.store.importing import (
    ImportPlan,
    Numbering,
    Predictor,
    TargetHead,
    choose_plan,
    plan_import,
)

_START_US = 1_800_000_000_000_000


def _log(streams: list[int]) -> list[ChainRow]:
    """A source log: one event per item, of stream ``account-<item>``, chained."""
    heads: dict[str, tuple[int, bytes]] = {}
    rows = []
    for position, n in enumerate(streams, 1):
        stream = f"account-{n}"
        version, previous = heads.get(stream, (0, GENESIS))
        event_id, data = os.urandom(16), b'{"n":%d}' % position
        at = _START_US + position
        digest = chain_hash(previous, stream, version + 1, event_id, "E", 1, at, data, b"{}")
        heads[stream] = (version + 1, digest)
        rows.append(
            ChainRow(stream, version + 1, position, event_id, "E", 1, at, data, b"{}", digest, ())
        )
    return rows


class _Target:
    """What an import batch reads of a target under its lock, kept as plans are written."""

    def __init__(self) -> None:
        self.heads: dict[str, TargetHead] = {}
        self.head = self.last_stored = self.last_at = 0

    def numbering(self) -> Numbering:
        return Numbering(self.head, self.last_stored)

    def write(self, planned: list[ChainRow]) -> None:
        for row in planned:
            self.heads[row.stream_id] = TargetHead(row.version, row.hash)
            self.head = max(self.head, row.position)
            self.last_stored, self.last_at = row.position, row.recorded_at_us

    def plan(self, batch: list[ChainRow], ahead: ImportPlan | None) -> tuple[object, bool]:
        """(what choose_plan gives, or the error's type and text; whether it used ``ahead``),
        after checking that plan_import gives the same."""
        inputs = (batch, self.heads, {}, self.last_at, self.numbering())
        try:
            expected: object = plan_import(*inputs)
        except EventkeepError as exc:
            expected = (type(exc), str(exc))
        if isinstance(expected, tuple):
            with pytest.raises(expected[0]) as raised:
                choose_plan(*inputs, ahead)
            assert str(raised.value) == expected[1]
            return expected, False
        got = choose_plan(*inputs, ahead)
        assert got == expected
        return got, ahead is not None and got is ahead.rows


def _batches(rows: list[ChainRow], size: int) -> list[list[ChainRow]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)]


@settings(max_examples=150, deadline=None)
@given(
    streams=st.lists(st.integers(1, 6), min_size=1, max_size=40),
    size=st.integers(1, 8),
    bumps=st.sets(st.integers(0, 10)),
    foreign=st.sets(st.integers(0, 10)),
)
def test_a_batch_is_always_written_by_the_plan_its_target_state_gives(
    streams: list[int], size: int, bumps: set[int], foreign: set[int]
) -> None:
    """Meanwhile, before some batches: the target's head moves (an operation removed events,
    say), or a stream of the source gets a head the copy did not write."""
    rows = _log(streams)
    batches = _batches(rows, size)
    predictor = Predictor(Numbering(0, 0), 0, 0)
    ahead = [predictor.plan(batch) for batch in batches]  # the reader runs ahead
    target = _Target()
    for n, (batch, plan) in enumerate(zip(batches, ahead, strict=True)):
        if n in bumps:
            target.head += 1
        if n in foreign:
            target.heads[batch[-1].stream_id] = TargetHead(99, b"\x01" * 32)
        got, _ = target.plan(batch, plan)
        if not isinstance(got, list):
            return  # refused: the copy stops here, as it would without planning ahead
        target.write(got)


@pytest.mark.parametrize("size", [1, 3, 50])
def test_an_uninterrupted_copy_is_written_by_the_plans_made_ahead(size: int) -> None:
    rows = _log([n % 7 for n in range(200)])
    predictor, target = Predictor(Numbering(0, 0), 0, 0), _Target()
    used = []
    for batch in _batches(rows, size):
        got, ahead_used = target.plan(batch, predictor.plan(batch))
        assert isinstance(got, list)
        target.write(got)
        used.append(ahead_used)
    assert all(used)
    assert target.heads == {
        row.stream_id: TargetHead(row.version, row.hash) for row in rows
    }  # every stream where its source stands


def test_a_wrong_prediction_is_planned_again_and_refused_the_same() -> None:
    rows = _log([1, 1, 2])
    predictor = Predictor(Numbering(0, 0), 0, 0)
    ahead = predictor.plan(rows)
    assert ahead is not None
    target = _Target()
    target.heads["account-1"] = TargetHead(1, b"\x02" * 32)  # the target holds another event
    got, used = target.plan(rows, ahead)
    assert not used
    assert isinstance(got, tuple)
    assert "already holds version 1" in str(got[1])
