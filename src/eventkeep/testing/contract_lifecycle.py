"""Stream lifecycle: soft and hard deletes, retention and ``compact``, truncation, archives and
reading them back, and what ``verify`` says after each (docs/lifecycle.md).

Stores here are opened with ``archive_dir=`` (a test's temporary directory): every backend
writes real archive files.
"""

from __future__ import annotations

import gzip
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from eventkeep.errors import (
    ConcurrencyError,
    IntegrityError,
    StreamDeletedError,
    ValidationError,
)
from eventkeep.store import NO_STREAM, EventStore
from eventkeep.store.anchors import load_key
from eventkeep.store.dcb import Query, QueryItem
from eventkeep.store.events import NewEvent
from eventkeep.store.personal import REDACTED
from eventkeep.store.recorded import to_micros
from eventkeep.store.types import StreamInfo
from eventkeep.testing.base import ContractBase, StoreFactory, deposits
from eventkeep.testing.events import CustomerRegistered, Deposited

__all__ = ["LifecycleContract"]

SECRET = b"lifecycle contract anchor secret, 40 b.."


def _fields(event: Any) -> tuple[Any, ...]:
    return (
        event.stream_id,
        event.version,
        event.position,
        event.event_id,
        event.type,
        event.schema_version,
        event.raw_data,
        _raw_meta(event),
        event.recorded_at,
        event.tags,
    )


def _raw_meta(event: Any) -> bytes:
    raw = event._raw_meta  # the exact stored bytes (RecordedEvent has no public accessor)
    return raw.encode() if isinstance(raw, str) else bytes(raw)


def _versions(store: EventStore, stream_id: str, **options: Any) -> list[int]:
    return [e.version for e in store.read_stream(stream_id, **options)]


class LifecycleContract(ContractBase):
    """Deleting, retention, compaction and archives, on every backend."""

    @pytest.fixture
    def archives(self, tmp_path: Path) -> Path:
        return tmp_path / "archives"

    @pytest.fixture
    def lstore(self, make_store: StoreFactory, archives: Path) -> EventStore:
        return make_store(archive_dir=str(archives))

    def fill(self, store: EventStore, stream_id: str = "order-1", count: int = 5) -> None:
        for n in range(count):
            store.append(stream_id, deposits(n + 1))

    # -- deleting -----------------------------------------------------------------------------

    @pytest.mark.parametrize("hard", [False, True])
    def test_a_deleted_stream_reads_back_whole_with_archived_and_raises_without(
        self, lstore: EventStore, hard: bool
    ) -> None:
        # A stream read checks for a tombstone in the statement that reads its first page;
        # archived reads (and retention's walk) read what is stored, tombstone or not.
        self.fill(lstore, count=3)
        lstore.delete_stream("order-1", hard=hard)
        with pytest.raises(StreamDeletedError):
            list(lstore.read_stream("order-1"))
        assert _versions(lstore, "order-1", archived=True) == [1, 2, 3]
        lstore.append("order-1", deposits(4), expected_version=3)  # revived
        assert _versions(lstore, "order-1") == [4]
        assert _versions(lstore, "order-1", archived=True) == [1, 2, 3, 4]

    def test_a_soft_deleted_stream_reads_as_deleted_saying_when_by_whom_and_why(
        self, lstore: EventStore
    ) -> None:
        self.fill(lstore)
        op = lstore.delete_stream("order-1", by="alice", reason="customer asked")
        with pytest.raises(StreamDeletedError) as caught:
            list(lstore.read_stream("order-1"))
        error = caught.value
        assert (error.stream_id, error.version, error.operation_id) == (
            "order-1",
            5,
            op.operation_id,
        )
        assert (error.by, error.reason, error.hard) == ("alice", "customer asked", False)
        assert abs(error.deleted_at / 1e6 - time.time()) < 600
        assert lstore.operations()[-1].kind == "delete"
        assert lstore.stream_version("order-1") == 5
        assert len(list(lstore.read_all())) == 5  # a soft delete keeps the events
        assert lstore.verify().ok

    def test_an_append_at_the_deleted_version_revives_the_stream_after_the_deletion(
        self, lstore: EventStore
    ) -> None:
        self.fill(lstore, count=3)
        lstore.delete_stream("order-1")
        with pytest.raises(ConcurrencyError):
            lstore.append("order-1", deposits(9), expected_version=NO_STREAM)
        lstore.append("order-1", deposits(9), expected_version=3)
        assert _versions(lstore, "order-1") == [4]
        assert lstore.deletion("order-1") is None
        assert lstore.verify().ok

    def test_a_hard_delete_archives_the_events_and_removes_them_with_their_tags(
        self, lstore: EventStore, archives: Path
    ) -> None:
        tagged = NewEvent(Deposited(amount=Decimal(7)), tags=["customer:7"])
        lstore.append("order-7", [tagged])
        self.fill(lstore, "order-8", 2)
        op = lstore.delete_stream("order-7", hard=True, by="ops", reason="erasure")
        assert (op.kind, op.events, op.state) == ("hard-delete", 1, "done")
        assert op.archive_file is not None
        assert (archives / op.archive_file).is_file()
        with pytest.raises(StreamDeletedError) as caught:
            list(lstore.read_stream("order-7"))
        assert caught.value.hard
        assert [e.stream_id for e in lstore.read_all()] == ["order-8", "order-8"]
        assert lstore.read(Query([QueryItem(tags=["customer:7"])])).events == []
        assert lstore.stream_version("order-7") == 1
        report = lstore.verify()
        assert report.ok, report
        assert any(op.operation_id in line for line in report.checked)

    def test_a_stream_whose_events_were_all_removed_keeps_its_head_listing_and_chain(
        self, lstore: EventStore
    ) -> None:
        # Its head is the last removed event (SQLite and memory keep a head row; PostgreSQL
        # reads it from the logged removal): listed and counted there, appended to after it.
        self.fill(lstore, "order-7", 3)
        self.fill(lstore, "order-8", 2)
        last = lstore.list_streams("order-7")[0].last_position
        lstore.delete_stream("order-7", hard=True)
        assert lstore.list_streams() == [
            StreamInfo("order-7", 3, last),
            StreamInfo("order-8", 2, lstore.head_position()),
        ]
        assert lstore.stats().streams == 2
        assert lstore.stream_version("order-7") == 3
        with pytest.raises(ConcurrencyError):
            lstore.append("order-7", deposits(9), expected_version=NO_STREAM)
        revived = lstore.append("order-7", deposits(9), expected_version=3)
        assert revived.versions == (4,)
        assert lstore.list_streams("order-7") == [StreamInfo("order-7", 4, revived.position)]
        assert _versions(lstore, "order-7", archived=True) == [1, 2, 3, 4]
        report = lstore.verify()
        assert report.ok, report

    @staticmethod
    def assert_removed_versions_stay_removed(writer: EventStore, lstore: EventStore) -> None:
        """``order-7`` held versions 1-3, all removed by a hard delete, and ``writer`` may
        know its head as version 2: expecting 2 or a new stream conflicts; 3 writes version 4."""
        for expected in (2, NO_STREAM, 0):
            with pytest.raises(ConcurrencyError):
                writer.append("order-7", deposits(9), expected_version=expected)
        assert writer.append("order-7", deposits(9), expected_version=3).versions == (4,)
        assert lstore.stream_version("order-7") == 4
        report = lstore.verify()
        assert report.ok, report

    def test_a_head_known_from_before_a_removal_by_another_handle_never_writes_a_removed_version(
        self, lstore: EventStore, archives: Path
    ) -> None:
        # The first handle learned the stream's head (version 2) from its own appends; the
        # second appends version 3 and removes the whole stream. The first, expecting version 2
        # or a new stream, must conflict with version 3, not write version 3 or 1 again.
        self.fill(lstore, "order-7", 2)
        other = self.reopen(lstore)
        try:
            other._set_archive_dir(str(archives), None)
            other.append("order-7", deposits(3), expected_version=2)
            other.delete_stream("order-7", hard=True)
            self.assert_removed_versions_stay_removed(lstore, lstore)
        finally:
            if other is not lstore:
                other.close()

    def test_a_head_read_before_a_removal_by_another_handle_never_writes_a_removed_version(
        self, lstore: EventStore
    ) -> None:
        # The second handle read the stream to its end (version 2: PostgreSQL learns the head
        # from such a read); the first appends version 3 and removes the whole stream. The
        # reader, expecting version 2 or a new stream, must conflict, not write 3 or 1 again.
        self.fill(lstore, "order-7", 2)
        reader = self.reopen(lstore)
        try:
            reader.append("order-9", deposits(1))  # it knows the server's clock
            assert [e.version for e in reader.read_stream("order-7")] == [1, 2]
            lstore.append("order-7", deposits(3), expected_version=2)
            lstore.delete_stream("order-7", hard=True)
            self.assert_removed_versions_stay_removed(reader, lstore)
        finally:
            if reader is not lstore:
                reader.close()

    def test_deleting_a_stream_that_does_not_exist_is_refused(self, lstore: EventStore) -> None:
        with pytest.raises(ValidationError):
            lstore.delete_stream("nobody")
        assert lstore.operations() == []

    # -- retention and compaction -------------------------------------------------------------

    def test_retention_by_count_keeps_the_last_events(self, lstore: EventStore) -> None:
        self.fill(lstore)
        lstore.set_retention("order-1", max_count=2)
        assert _versions(lstore, "order-1") == [1, 2, 3, 4, 5]  # nothing goes before compact
        report = lstore.compact()
        assert report.events == 3
        assert _versions(lstore, "order-1") == [4, 5]
        assert lstore.first_version("order-1") == 4
        assert lstore.stream_version("order-1") == 5
        assert lstore.verify().ok

    def test_retention_by_age_removes_the_events_recorded_before_max_age(
        self, lstore: EventStore
    ) -> None:
        self.fill(lstore, count=3)
        old = [to_micros(e.recorded_at) for e in lstore.read_stream("order-1")]
        self.fill(lstore, "order-2", 1)
        lstore.set_retention("order-1", max_age=60)
        assert lstore.compact(now=old[0] / 1e6 + 30).events == 0
        between = (old[1] + old[2]) / 2e6  # after the second event, before the third
        assert old[2] - old[1] >= 2  # microseconds: an append takes longer than that
        assert lstore.compact(now=between + 60).events == 2
        assert _versions(lstore, "order-1") == [3]
        assert lstore.verify().ok

    def test_truncate_before_a_version_through_retention(self, lstore: EventStore) -> None:
        self.fill(lstore)
        lstore.set_retention("order-1", truncate_before=3)
        assert lstore.retention("order-1") == (None, None, 3)
        lstore.compact()
        assert _versions(lstore, "order-1") == [3, 4, 5]
        assert lstore.operations()[-1].kind == "retention"

    def test_compaction_is_idempotent(self, lstore: EventStore) -> None:
        self.fill(lstore)
        lstore.set_retention("order-1", max_count=1)
        first = lstore.compact()
        again = lstore.compact()
        assert (len(first.operations), len(again.operations)) == (1, 0)
        assert len(lstore.operations()) == 1
        assert _versions(lstore, "order-1") == [5]

    def test_appends_after_a_truncation_keep_their_expected_versions(
        self, lstore: EventStore
    ) -> None:
        self.fill(lstore)
        lstore.truncate("order-1", 5)
        result = lstore.append("order-1", deposits(6), expected_version=5)
        assert result.version == 6
        with pytest.raises(ConcurrencyError):
            lstore.append("order-1", deposits(7), expected_version=5)
        assert _versions(lstore, "order-1") == [5, 6]
        assert lstore.verify().ok

    def test_bad_retention_is_refused_and_nothing_is_stored(self, lstore: EventStore) -> None:
        self.fill(lstore, count=1)
        for bad in ({"max_count": -1}, {"max_age": 0}, {"truncate_before": 0}, {"max_age": "1"}):
            with pytest.raises(ValidationError):
                lstore.set_retention("order-1", **bad)
        assert lstore.retention("order-1") is None

    # -- archives -----------------------------------------------------------------------------

    def test_archived_history_reads_back_identical_to_the_original(
        self, lstore: EventStore
    ) -> None:
        lstore.append("order-1", [NewEvent(Deposited(amount=Decimal("1.5")), tags=["t:1"])])
        self.fill(lstore, "order-2", 1)
        self.fill(lstore, "order-1", 4)
        before = [_fields(e) for e in lstore.read_stream("order-1")]
        lstore.archive("order-1", before_version=3)
        lstore.set_retention("order-1", max_count=1)
        lstore.compact(reason="test")
        assert _versions(lstore, "order-1") == [5]
        assert [_fields(e) for e in lstore.read_stream("order-1", archived=True)] == before
        assert [
            e.version for e in lstore.read_stream("order-1", 2, 4, archived=True, backwards=True)
        ] == [4, 3, 2]
        assert lstore.read_stream("order-1", archived=True).__next__().event == Deposited(
            amount=Decimal("1.5")
        )

    def test_an_archive_of_the_log_before_a_position_takes_every_stream_s_prefix(
        self, lstore: EventStore
    ) -> None:
        self.fill(lstore, "a", 2)
        self.fill(lstore, "b", 2)
        self.fill(lstore, "a", 1)
        cut = lstore.head_position() - 1
        op = lstore.archive(before_position=cut)
        assert op is not None
        assert op.stream_id is None
        assert op.events == cut - 1
        assert [e.position for e in lstore.read_all()] == [cut, cut + 1]
        assert _versions(lstore, "a", archived=True) == [1, 2, 3]
        assert lstore.archive(before_position=cut) is None
        assert lstore.verify().ok

    def test_a_gzip_archive_holds_its_events_as_json_lines(
        self, lstore: EventStore, archives: Path
    ) -> None:
        self.fill(lstore, count=2)
        op = lstore.truncate("order-1", 3)
        assert op is not None
        assert op.archive_file is not None
        lines = gzip.decompress((archives / op.archive_file).read_bytes()).splitlines()
        assert len(lines) == 3
        assert b'"eventkeep_archive":1' in lines[0]
        assert (archives / op.archive_file).stat().st_mode & 0o777 == 0o600
        sidecar = (archives / f"{op.archive_file}.sha256").read_text()
        assert sidecar.split()[0] == op.archive_digest

    def test_reading_through_an_edited_archive_is_refused(
        self, lstore: EventStore, archives: Path
    ) -> None:
        self.fill(lstore, count=2)
        op = lstore.archive("order-1", before_version=2, compress=False)
        assert op is not None
        assert op.archive_file is not None
        path = archives / op.archive_file
        edited = path.read_bytes().replace(b'\\"1\\"', b'\\"9\\"')  # the amount
        assert edited != path.read_bytes()
        path.write_bytes(edited)
        with pytest.raises(IntegrityError):
            list(lstore.read_stream("order-1", archived=True))

    # -- verify -------------------------------------------------------------------------------

    def test_verify_detects_an_archive_file_edited_by_hand(
        self, lstore: EventStore, archives: Path
    ) -> None:
        self.fill(lstore, count=3)
        op = lstore.archive("order-1", before_version=3, compress=False)
        assert op is not None
        assert op.archive_file is not None
        path = archives / op.archive_file
        edited = path.read_bytes().replace(b'\\"2\\"', b'\\"20\\"')  # an amount
        assert edited != path.read_bytes()
        path.write_bytes(edited)
        report = lstore.verify()
        assert not report.ok
        assert any(op.archive_file in problem for problem in report.problems)

    def test_verify_reports_a_missing_archive_as_not_checked(
        self, lstore: EventStore, archives: Path
    ) -> None:
        self.fill(lstore, count=3)
        op = lstore.truncate("order-1", 2)
        assert op is not None
        assert op.archive_file is not None
        (archives / op.archive_file).unlink()
        report = lstore.verify()
        assert report.ok
        assert any(op.archive_file in item for item in report.not_checked)

    def test_verify_reports_an_event_deleted_behind_the_log_s_back(
        self, lstore: EventStore
    ) -> None:
        self.fill(lstore, count=4)
        lstore.truncate("order-1", 2)
        self.delete_behind_the_log(lstore, "order-1", 2)
        report = lstore.verify()
        assert [(b.stream_id, b.version) for b in report.broken] == [("order-1", 2)]

    def test_an_anchor_taken_before_a_truncation_still_verifies(
        self, lstore: EventStore, archives: Path
    ) -> None:
        key = load_key(SECRET)
        self.fill(lstore, "a", 3)
        self.fill(lstore, "b", 2)
        anchor = lstore.anchor(key)
        lstore.truncate("a", 3)
        lstore.delete_stream("b", hard=True)
        report = lstore.verify(anchor=anchor, key=key)
        assert report.ok, report
        for name in list(archives.iterdir()):
            name.unlink()
        report = lstore.verify(anchor=anchor, key=key)
        assert report.ok
        removed = " ".join(report.not_checked)
        assert "removed by operation" in removed
        assert "'b'" in removed

    def test_positions_are_never_given_twice_after_the_log_s_last_events_go(
        self, lstore: EventStore
    ) -> None:
        self.fill(lstore, "a", 2)
        self.fill(lstore, "b", 2)
        head = lstore.head_position()
        lstore.delete_stream("b", hard=True)
        assert lstore.head_position() == head
        result = lstore.append("c", deposits(1, 2))
        assert result.positions == (head + 1, head + 2)
        assert lstore.verify().ok

    def test_archived_personal_data_reads_revealed_then_redacted_after_forget(
        self, lstore: EventStore, archives: Path
    ) -> None:
        lstore.append(
            "customer-ada", [CustomerRegistered(customer_id="ada", email="ada@example.com")]
        )
        self.fill(lstore, "customer-ada", 2)
        lstore.truncate("customer-ada", 2)  # the registration goes to an archive file
        assert _versions(lstore, "customer-ada") == [2, 3]
        first = next(lstore.read_stream("customer-ada", archived=True))
        assert isinstance(first.event, CustomerRegistered)
        assert first.event.email == "ada@example.com"
        assert b"ada@example.com" not in b"".join(p.read_bytes() for p in archives.iterdir())
        other = self.reopen(lstore)  # forgotten through another handle (another process)
        try:
            other.forget("ada")
        finally:
            if other is not lstore:
                other.close()
        first = next(lstore.read_stream("customer-ada", archived=True))
        assert isinstance(first.event, CustomerRegistered)
        assert first.event.email == REDACTED
        assert first.data["email"] == REDACTED
        assert lstore.verify().ok
