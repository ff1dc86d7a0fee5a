"""Tamper evidence (``verify``) and snapshots."""

from __future__ import annotations

import pytest

from eventkeep.errors import ValidationError
from eventkeep.store import EventStore, Snapshot
from eventkeep.testing.base import ContractBase, deposits, state

__all__ = ["IntegrityContract"]


def fill(store: EventStore) -> dict[str, list[int]]:
    """Three streams of 4, 1 and 3 events, interleaved; returns each stream's positions."""
    out: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    for stream_id, count in (("a", 2), ("b", 1), ("c", 2), ("a", 2), ("c", 1)):
        out[stream_id].extend(store.append(stream_id, deposits(*range(count))).positions)
    return out


class IntegrityContract(ContractBase):
    # -- verify -------------------------------------------------------------------------------

    def test_verify_on_an_empty_store_is_all_clear(self, store: EventStore) -> None:
        report = store.verify()
        assert report.ok
        assert (report.events_checked, report.streams_checked, report.broken) == (0, 0, ())

    def test_verify_is_all_clear_and_counts_what_it_checked(self, store: EventStore) -> None:
        fill(store)
        report = store.verify()
        assert report.ok
        assert report.broken == ()
        assert (report.events_checked, report.streams_checked) == (8, 3)

    def test_verify_reports_its_progress_as_it_walks_the_chains(self, store: EventStore) -> None:
        store.append("a", deposits(*range(1, 3001)))
        store.append("b", deposits(1, 2))
        calls: list[tuple[int, int]] = []
        report = store.verify(progress=lambda checked, total: calls.append((checked, total)))
        assert report.ok
        assert len(calls) >= 2  # at least one on the way (every few thousand events) and the end
        assert [checked for checked, _ in calls] == sorted(checked for checked, _ in calls)
        assert calls[-1][0] == report.events_checked == 3002
        assert all(checked <= total for checked, total in calls)
        assert calls[-1][1] == 3002
        with pytest.raises(ValidationError, match="progress must be callable"):
            store.verify(progress=3)  # type: ignore[arg-type]

    @pytest.mark.parametrize("version", [1, 3, 4], ids=["first", "middle", "last"])
    def test_verify_reports_a_tampered_event_at_its_stream_and_version(
        self, store: EventStore, version: int
    ) -> None:
        where = fill(store)
        self.tamper(store, "a", version)
        report = store.verify()
        assert not report.ok
        assert [(b.stream_id, b.version) for b in report.broken] == [("a", version)]
        assert report.broken[0].position in (where["a"][version - 1], None)
        assert report.broken[0].reason
        assert report.events_checked == 8

    def test_tampering_shows_in_reads_but_only_verify_can_tell(self, store: EventStore) -> None:
        fill(store)
        before = [e.data for e in store.read_stream("c")]
        self.tamper(store, "c", 2)
        after = [e.data for e in store.read_stream("c")]
        assert after[0] == before[0]
        assert after[2] == before[2]
        assert after[1] != before[1]
        assert [(b.stream_id, b.version) for b in store.verify().broken] == [("c", 2)]

    def test_verify_reports_the_first_broken_link_of_each_tampered_stream(
        self, store: EventStore
    ) -> None:
        fill(store)
        self.tamper(store, "c", 3)
        self.tamper(store, "a", 2)
        self.tamper(store, "a", 4)
        report = store.verify()
        assert [(b.stream_id, b.version) for b in report.broken] == [("a", 2), ("c", 3)]

    def test_a_tampered_stream_stays_reported_after_later_appends(self, store: EventStore) -> None:
        fill(store)
        self.tamper(store, "b", 1)
        store.append("b", deposits(5))
        store.append("d", deposits(6))
        report = store.verify()
        assert [(b.stream_id, b.version) for b in report.broken] == [("b", 1)]
        assert (report.events_checked, report.streams_checked) == (10, 4)

    # -- snapshots ----------------------------------------------------------------------------

    def test_a_saved_snapshot_loads_back_exactly(self, store: EventStore) -> None:
        store.append("account-1", deposits(1, 2, 3))
        data = b"\x00\xff state \xc3\xa9 bytes"
        store.save_snapshot("account-1", 3, "contract.Account", 2, data)
        snapshot = store.load_snapshot("account-1")
        assert isinstance(snapshot, Snapshot)
        assert snapshot[:5] == ("account-1", 3, "contract.Account", 2, data)
        assert isinstance(snapshot.recorded_at, int)

    def test_load_snapshot_returns_the_latest_at_or_below_max_version(
        self, store: EventStore
    ) -> None:
        for version in (5, 2, 9):
            store.save_snapshot("s", version, "contract.State", 1, b"v%d" % version)
        assert store.load_snapshot("s").data == b"v9"  # type: ignore[union-attr]
        assert store.load_snapshot("s", max_version=8).data == b"v5"  # type: ignore[union-attr]
        assert store.load_snapshot("s", max_version=5).data == b"v5"  # type: ignore[union-attr]
        assert store.load_snapshot("s", max_version=2).version == 2  # type: ignore[union-attr]
        assert store.load_snapshot("s", max_version=1) is None
        assert store.load_snapshot("s", max_version=0) is None
        assert store.load_snapshot("other") is None

    def test_saving_a_snapshot_at_the_same_version_replaces_it(self, store: EventStore) -> None:
        store.save_snapshot("s", 4, "contract.State", 1, b"old")
        store.save_snapshot("s", 4, "contract.State", 2, b"new")
        snapshot = store.load_snapshot("s")
        assert snapshot is not None
        assert (snapshot.version, snapshot.schema_version, snapshot.data) == (4, 2, b"new")

    def test_delete_snapshots_deletes_by_prefix_and_counts(self, store: EventStore) -> None:
        for stream_id in ("account-1", "account-2", "order-1", "a_b", "axb"):
            store.save_snapshot(stream_id, 1, "contract.State", 1, b"1")
            store.save_snapshot(stream_id, 2, "contract.State", 1, b"2")
        assert store.delete_snapshots("account-") == 4
        assert store.load_snapshot("account-1") is None
        assert store.load_snapshot("order-1") is not None
        assert store.delete_snapshots("a_") == 2
        assert store.load_snapshot("axb") is not None
        assert store.delete_snapshots("nothing") == 0
        assert store.delete_snapshots() == 4
        assert store.load_snapshot("order-1") is None

    def test_snapshots_are_not_events(self, store: EventStore) -> None:
        store.append("s", deposits(1))
        before = state(store)
        store.save_snapshot("s", 1, "contract.State", 1, b"x")
        store.save_snapshot("t", 3, "contract.State", 1, b"y")
        assert state(store) == before
        assert store.verify().ok
        store.delete_snapshots()
        assert state(store) == before

    @pytest.mark.parametrize(
        ("stream_id", "version", "state_type", "schema_version", "data"),
        [
            ("", 1, "contract.State", 1, b""),
            ("s", 0, "contract.State", 1, b""),
            ("s", 1, "", 1, b""),
            ("s", 1, "contract.State", 0, b""),
            ("s", 1, "contract.State", 1, "not bytes"),
        ],
        ids=["empty-stream-id", "version-0", "empty-type", "schema-version-0", "str-data"],
    )
    def test_a_bad_snapshot_is_refused_and_nothing_is_saved(
        self,
        store: EventStore,
        stream_id: str,
        version: int,
        state_type: str,
        schema_version: int,
        data: bytes,
    ) -> None:
        with pytest.raises(ValidationError):
            store.save_snapshot(stream_id, version, state_type, schema_version, data)
        assert store.load_snapshot("s") is None
