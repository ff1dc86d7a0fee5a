"""The hash chain and ``verify_chains``, on hand-made rows."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from eventkeep.store.codec import PreparedEvent
from eventkeep.store.hashing import (
    GENESIS,
    BrokenLink,
    ChainRow,
    StreamHead,
    VerifyReport,
    chain_events,
    chain_hash,
    verify_chains,
)


def chain(stream_id: str, count: int, first_position: int = 1, step: int = 1) -> list[ChainRow]:
    """A correct chain of ``count`` events of one stream."""
    rows, previous = [], GENESIS
    for version in range(1, count + 1):
        event_id = hashlib.md5(f"{stream_id}/{version}".encode()).digest()
        data = b'{"n":%d}' % version
        digest = chain_hash(
            previous, stream_id, version, event_id, "unit.T", 1, 1_000 + version, data, b"{}"
        )
        rows.append(
            ChainRow(
                stream_id,
                version,
                first_position + (version - 1) * step,
                event_id,
                "unit.T",
                1,
                1_000 + version,
                data,
                b"{}",
                digest,
            )
        )
        previous = digest
    return rows


def links(report: VerifyReport) -> list[tuple[str, int, int | None]]:
    return [(b.stream_id, b.version, b.position) for b in report.broken]


def test_the_first_event_of_a_stream_chains_to_32_zero_bytes() -> None:
    assert bytes(32) == GENESIS
    row = chain("s", 1)[0]
    envelope = msgspec.msgpack.encode(
        ("s", 1, row.event_id, "unit.T", 1, row.recorded_at_us, row.data, row.metadata)
    )
    assert row.hash == hashlib.sha256(GENESIS + envelope).digest()


def test_the_chain_hash_of_a_known_envelope_never_changes() -> None:
    # Stored databases hold these hashes: changing the envelope format breaks every verify.
    args = ("account-1", 1, bytes(range(16)), "Deposited", 1, 1_700_000_000_000_000)
    digest = chain_hash(GENESIS, *args, b'{"amount":"1"}', b"{}")
    assert digest.hex() == "9358e11d938f9de88ef6e287aaa1a27a897c677928934d2cc30d4ec943c48926"


def test_chain_events_is_chain_hash_applied_in_turn() -> None:
    # chain_events inlines chain_hash for speed: the two must never disagree.
    events = [
        PreparedEvent(bytes([n]) * 16, f"unit.T{n % 2}", 1 + n % 3, b'{"n":%d}' % n, b"{}")
        for n in range(5)
    ]
    expected, previous = [], bytes(range(32))
    for version, ev in enumerate(events, start=8):
        previous = chain_hash(
            previous, "s-1", version, ev.event_id, ev.type, ev.schema_version, 42, ev.data, b"{}"
        )
        expected.append(previous)
    assert chain_events(bytes(range(32)), "s-1", 7, events, 42) == expected


@pytest.mark.parametrize("field", range(9))
def test_every_field_of_the_envelope_and_the_previous_hash_changes_the_hash(field: int) -> None:
    args: list[object] = [GENESIS, "s", 1, bytes(16), "unit.T", 1, 5, b"{}", b"{}"]
    base = chain_hash(*args)  # type: ignore[arg-type]
    changed = {
        0: b"\x01" * 32,
        1: "t",
        2: 2,
        3: b"\x01" * 16,
        4: "unit.U",
        5: 2,
        6: 6,
        7: b'{"a":1}',
        8: b'{"a":1}',
    }
    args[field] = changed[field]
    assert chain_hash(*args) != base  # type: ignore[arg-type]


def test_adjacent_fields_cannot_trade_bytes() -> None:
    a = chain_hash(GENESIS, "s", 1, bytes(16), "unit.T", 1, 5, b'{"a":1}', b"{}")
    b = chain_hash(GENESIS, "s", 1, bytes(16), "unit.T", 1, 5, b'{"a":1}{', b"}")
    assert a != b


def test_intact_chains_are_all_clear_with_counts() -> None:
    rows = chain("a", 3) + chain("b", 2, first_position=10)
    report = verify_chains(rows, {"a": 3, "b": 2})
    assert report.ok
    assert report == VerifyReport(events_checked=5, streams_checked=2, broken=())


def test_an_empty_store_is_all_clear() -> None:
    assert verify_chains([], {}) == VerifyReport(0, 0, ())


def test_positions_with_gaps_do_not_matter() -> None:
    assert verify_chains(chain("a", 4, first_position=3, step=7), {"a": 4}).ok


def test_a_changed_data_byte_is_reported_at_its_version_and_position() -> None:
    rows = chain("a", 4)
    rows[2] = rows[2]._replace(data=b'{"n":99}')
    report = verify_chains(rows, {"a": 4})
    assert not report.ok
    assert links(report) == [("a", 3, 3)]
    assert "hash" in report.broken[0].reason
    assert report.events_checked == 4


@pytest.mark.parametrize(
    "change",
    [
        {"type": "unit.Other"},
        {"schema_version": 2},
        {"recorded_at_us": 1},
        {"metadata": b'{"a":1}'},
        {"event_id": bytes(16)},
        {"hash": bytes(32)},
    ],
    ids=lambda c: next(iter(c)),
)
def test_any_changed_field_is_reported(change: dict[str, object]) -> None:
    rows = chain("a", 3)
    rows[1] = rows[1]._replace(**change)
    assert links(verify_chains(rows, {"a": 3})) == [("a", 2, 2)]


def test_only_the_first_broken_link_of_a_stream_is_reported() -> None:
    rows = chain("a", 5)
    rows[1] = rows[1]._replace(data=b"{}")
    rows[3] = rows[3]._replace(data=b"{}")
    assert links(verify_chains(rows, {"a": 5})) == [("a", 2, 2)]


def test_a_rehashed_event_breaks_the_link_to_its_successor() -> None:
    rows = chain("a", 3)
    forged = rows[1]._replace(data=b'{"n":99}')
    forged = forged._replace(
        hash=chain_hash(
            rows[0].hash,
            "a",
            2,
            forged.event_id,
            "unit.T",
            1,
            forged.recorded_at_us,
            forged.data,
            b"{}",
        )
    )
    rows[1] = forged
    assert links(verify_chains(rows, {"a": 3})) == [("a", 3, 3)]


def test_a_missing_version_is_reported_where_the_gap_starts() -> None:
    rows = chain("a", 4)
    del rows[1]
    report = verify_chains(rows, {"a": 4})
    assert links(report) == [("a", 2, None)]
    assert "missing" in report.broken[0].reason


def test_a_truncated_tail_is_caught_by_the_stream_head() -> None:
    rows = chain("a", 4)[:2]
    report = verify_chains(rows, {"a": 4})
    assert links(report) == [("a", 3, None)]
    assert "missing" in report.broken[0].reason


def test_a_stream_whose_events_all_vanished_is_reported_at_version_one() -> None:
    report = verify_chains(chain("a", 2), {"a": 2, "gone": 3})
    assert links(report) == [("gone", 1, None)]
    assert report.streams_checked == 2


def test_events_of_a_stream_with_no_head_are_reported() -> None:
    report = verify_chains(chain("a", 2) + chain("orphan", 1, first_position=9), {"a": 2})
    assert links(report) == [("orphan", 1, None)]


def test_a_head_behind_the_stored_events_is_reported() -> None:
    # Every backend reads heads and events from one snapshot, and writes them in one
    # transaction: a head behind its events was moved back behind the store's back.
    assert links(verify_chains(chain("a", 3), {"a": 2})) == [("a", 3, None)]


def test_a_head_whose_position_or_hash_differs_from_its_last_event_is_reported() -> None:
    rows = chain("a", 3)
    last = rows[-1]
    assert verify_chains(rows, {"a": StreamHead(3, last.position, last.hash)}).ok
    moved = verify_chains(rows, {"a": StreamHead(3, last.position + 1, last.hash)})
    assert links(moved) == [("a", 3, last.position)]
    assert "position" in moved.broken[0].reason
    rehashed = verify_chains(rows, {"a": StreamHead(3, last.position, bytes(32))})
    assert links(rehashed) == [("a", 3, last.position)]
    assert "hash" in rehashed.broken[0].reason


def test_positions_that_do_not_increase_with_versions_are_reported() -> None:
    rows = chain("a", 3)
    rows[0], rows[1] = rows[0]._replace(position=2), rows[1]._replace(position=1)
    report = verify_chains(rows, {"a": 3})
    assert links(report) == [("a", 2, 1)]
    assert "reordered" in report.broken[0].reason


def test_broken_links_of_several_streams_are_sorted_by_stream() -> None:
    rows = chain("b", 2) + chain("c", 2, first_position=3) + chain("a", 2, first_position=5)
    rows[1] = rows[1]._replace(data=b"{}")
    rows[2] = rows[2]._replace(data=b"{}")
    rows[4] = rows[4]._replace(data=b"{}")
    report = verify_chains(rows, {"a": 2, "b": 2, "c": 2})
    assert [b.stream_id for b in report.broken] == ["a", "b", "c"]
    assert all(isinstance(b, BrokenLink) for b in report.broken)
