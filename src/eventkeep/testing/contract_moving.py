"""Contract: moving history between stores (export, import, copy), exactly as stored."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest

from eventkeep.errors import DuplicateEventIdError, IntegrityError, ValidationError
from eventkeep.store import EventStore
from eventkeep.store.dcb import Query, QueryItem
from eventkeep.store.events import NewEvent, RawEvent
from eventkeep.testing.base import ContractBase, StoreFactory, assert_unchanged, deposits, state
from eventkeep.testing.events import Deposited

__all__ = ["MovingContract"]


def _fill(store: EventStore) -> None:
    """Streams of several kinds: typed and raw events, tags, metadata, multi-stream appends."""
    store.append("account-1", deposits(10, "2.50"), metadata={"correlation_id": "c-1"})
    store.append("account-2", [NewEvent(Deposited(amount=Decimal(7)), tags=["owner:ann"])])
    store.append("order-9", [RawEvent("Placed", {"note": "é ü \u2028 \n", "n": [1, 2.5]})])
    store.append("account-1", deposits(3))
    store.append_events([NewEvent(RawEvent("Noted", {"x": 1}), tags=["owner:ann", "z"])])


class MovingContract(ContractBase):
    def test_export_yields_every_event_as_stored_in_log_order(self, store: EventStore) -> None:
        _fill(store)
        rows = list(store.export())
        recorded = list(store.read_all())
        assert [r.position for r in rows] == [r.position for r in recorded]
        for row, event in zip(rows, recorded, strict=True):
            assert (row.stream_id, row.version, row.type) == (
                event.stream_id,
                event.version,
                event.type,
            )
            assert row.event_id == event.event_id.bytes
            assert row.data == event.raw_data
            assert row.tags == event.tags
            assert len(row.hash) == 32

    def test_export_after_a_position_and_of_a_stream_prefix(self, store: EventStore) -> None:
        _fill(store)
        everything = list(store.export())
        assert list(store.export(after=3)) == everything[3:]
        accounts = [r for r in everything if r.stream_id.startswith("account-")]
        assert list(store.export(stream_prefix="account-")) == accounts

    def test_import_into_an_empty_store_keeps_every_field_and_the_order(
        self, make_store: StoreFactory
    ) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        report = target.import_(source.export())
        assert (report.written, report.skipped) == (6, 0)
        assert list(target.export()) == list(source.export())  # positions too, into an empty one
        assert target.verify(deep=False).ok
        assert [e.event for e in target.read_all()] == [e.event for e in source.read_all()]
        query = Query([QueryItem(tags=["owner:ann"])])
        assert [e.event_id for e in target.read(query).events] == [
            e.event_id for e in source.read(query).events
        ]

    def test_appends_after_an_import_chain_on_the_imported_heads(
        self, make_store: StoreFactory
    ) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        target.import_(source.export())
        target.append("account-1", deposits(1), expected_version=3)
        assert target.verify(deep=False).ok
        stamps = [e.recorded_at for e in target.read_all()]
        assert stamps == sorted(stamps)

    def test_importing_again_skips_every_event_and_changes_nothing(
        self, make_store: StoreFactory
    ) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        target.import_(source.export(), batch_size=2)
        before = state(target)
        report = target.import_(source.export(), batch_size=4)
        assert (report.written, report.skipped) == (0, 6)
        assert_unchanged(target, before)

    def test_an_import_cut_short_is_finished_by_importing_the_whole_export_again(
        self, make_store: StoreFactory
    ) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        rows = list(source.export())
        target.import_(rows[:4])
        report = target.import_(rows)
        assert (report.written, report.skipped) == (2, 4)
        assert list(target.export()) == rows

    def test_an_edited_event_is_refused_and_nothing_of_its_batch_is_written(
        self, make_store: StoreFactory
    ) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        rows = list(source.export())
        rows[4] = rows[4]._replace(data=rows[4].data.replace(b"3", b"9"))
        before = state(target)
        with pytest.raises(IntegrityError, match="hash does not match"):
            target.import_(rows)
        assert_unchanged(target, before)

    def test_an_edited_event_already_stored_is_refused_not_skipped(
        self, make_store: StoreFactory
    ) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        rows = list(source.export())
        target.import_(rows)
        before = state(target)
        rows[0] = rows[0]._replace(data=rows[0].data.replace(b"10", b"99"))
        with pytest.raises(DuplicateEventIdError, match="already stored as another event"):
            target.import_(rows)
        assert_unchanged(target, before)

    def test_a_stream_holding_another_event_at_the_version_is_refused(
        self, make_store: StoreFactory
    ) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        target.append("account-1", deposits(1))
        before = state(target)
        with pytest.raises(IntegrityError, match="already holds version 1"):
            target.import_(source.export())
        assert_unchanged(target, before)

    def test_an_export_starting_mid_stream_needs_the_streams_start_in_the_target(
        self, make_store: StoreFactory
    ) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        with pytest.raises(ValidationError, match="versions 1 to 2 are missing"):
            target.import_(source.export(after=3))
        assert target.head_position() == 0
        target.import_(source.export(stream_prefix="nothing-"))
        assert target.head_position() == 0

    def test_events_older_than_the_targets_last_event_are_refused(
        self, make_store: StoreFactory
    ) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        target.append("elsewhere", deposits(1))
        before = state(target)
        with pytest.raises(ValidationError, match="times never go back"):
            target.import_(source.export())
        assert_unchanged(target, before)

    def test_malformed_rows_are_refused_before_anything_is_written(
        self, make_store: StoreFactory
    ) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        rows = list(source.export())
        for bad in (
            rows[0]._replace(hash=b"short"),
            rows[0]._replace(event_id=b"not sixteen bytes"),
            rows[0]._replace(data=b"[1, 2]"),
            rows[0]._replace(tags=("b", "a")),
            rows[0]._replace(stream_id=""),
        ):
            with pytest.raises(ValidationError):
                target.import_([bad])
        with pytest.raises(ValidationError, match="log order"):
            target.import_([rows[1], rows[0]])
        assert target.head_position() == 0

    def test_an_export_file_round_trips_byte_for_byte(self, make_store: StoreFactory) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        out = io.BytesIO()
        assert self.export_file(source, out) == 6
        done = self.import_file(target, io.BytesIO(out.getvalue()).readlines())
        assert done.complete
        assert (done.written, done.skipped) == (6, 0)
        assert list(target.export()) == list(source.export())

    def test_copy_resumes_after_the_targets_last_event(self, make_store: StoreFactory) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        rows = list(source.export())
        target.import_(rows[:2])  # what an interrupted copy left
        report = self.copy_store(source, target, batch_size=2)
        assert (report.written, report.skipped, report.resumed_after) == (4, 0, 2)
        assert list(target.export()) == rows
        again = self.copy_store(source, target)
        assert (again.written, again.resumed_after) == (0, 6)

    def test_copy_refuses_a_target_that_is_not_a_copy_of_the_source(
        self, make_store: StoreFactory
    ) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        target.append("account-1", deposits(10))
        with pytest.raises(ValidationError, match="is not a copy"):
            self.copy_store(source, target)
        assert target.head_position() == 1

    def test_copy_refuses_a_target_holding_only_some_streams_of_the_source(
        self, make_store: StoreFactory
    ) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        target.import_(source.export(stream_prefix="order-"))
        with pytest.raises(ValidationError, match="its first event"):
            self.copy_store(source, target)

    def test_import_is_refused_inside_a_store_transaction(self, make_store: StoreFactory) -> None:
        source, target = make_store(), make_store()
        _fill(source)
        rows = list(source.export())
        with target.transaction(), pytest.raises(ValidationError, match="outside"):
            target.import_(rows)
        assert target.head_position() == 0

    def test_removed_events_are_not_exported_and_the_rest_imports_whole(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = make_store(archive_dir=str(tmp_path / "archives"))
        target = make_store()
        _fill(source)
        source.delete_stream("order-9", hard=True, by="test", reason="moving")
        rows = list(source.export())
        assert [r.stream_id for r in rows].count("order-9") == 0
        assert len(rows) == 5
        assert target.import_(rows).written == 5
        assert target.verify(deep=False).ok

    def test_a_stream_whose_first_versions_were_removed_imports_with_the_operations_log(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = make_store(archive_dir=str(tmp_path / "archives"))
        target, other = make_store(), make_store()
        _fill(source)
        source.truncate("account-1", 3, by="test", reason="moving")
        out = io.BytesIO()
        self.export_file(source, out)  # a whole export carries the operations log
        self.import_file(target, io.BytesIO(out.getvalue()).readlines())
        assert list(target.export()) == list(source.export())
        assert target.removals() == source.removals()
        assert target.verify(deep=False).ok
        # The events alone (a prefix export carries no side records) still need the start.
        with pytest.raises(ValidationError, match="versions 1 to 2 are missing"):
            other.import_(source.export(stream_prefix="account-1"))
        assert other.head_position() == 0
