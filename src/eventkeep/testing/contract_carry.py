"""Contract: export, import and copy carry the stream lifecycle (operations log, removals,
stream metadata, archive files), so a store with deleted, truncated, compacted and archived
streams moves one to one (docs/moving.md, docs/lifecycle.md)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from eventkeep.errors import IntegrityError, StreamDeletedError, ValidationError
from eventkeep.moving.lifecycle import take_archives
from eventkeep.store import EventStore
from eventkeep.store.anchors import load_key
from eventkeep.store.events import RawEvent
from eventkeep.testing.base import ContractBase, StoreFactory, deposits

__all__ = ["LifecycleMovingContract", "lifecycle_state", "with_lifecycle"]


def with_lifecycle(store: EventStore) -> None:
    """Fill ``store`` (opened with an archive directory) with streams of every lifecycle kind:
    soft-deleted, hard-deleted, hard-deleted and revived, truncated, retention-managed (and
    compacted), retention set but not applied, a log prefix archived, and the log's last
    events removed (a gap at the head)."""
    store.append("soft-1", deposits(1, 2))
    store.append("hard-1", deposits(3, 4))
    store.append("trunc-1", deposits(5, 6, 7))
    store.append("kept-1", [RawEvent("Noted", {"n": 1})], metadata={"who": "ann"})
    store.append("ret-1", deposits(8, 9, 10, 11))
    store.append("old-1", deposits(12))
    store.append("trunc-1", deposits(13))
    store.append("revived-1", deposits(14))
    store.archive(before_position=3, by="test", reason="log prefix")
    store.delete_stream("soft-1", by="test", reason="soft")
    store.delete_stream("hard-1", hard=True, by="test", reason="hard")
    store.truncate("trunc-1", 3, by="test", reason="truncate")
    store.set_retention("ret-1", max_count=2)
    store.set_retention("kept-1", truncate_before=5)
    store.compact(by="test")
    store.delete_stream("revived-1", hard=True, by="test", reason="revive later")
    store.append("revived-1", deposits(15), expected_version=1)
    store.append("tail-1", deposits(16, 17))
    store.delete_stream("tail-1", hard=True, by="test", reason="the log's tail")


def lifecycle_state(store: EventStore) -> dict[str, Any]:
    """Everything a copy must reproduce: every stored field (positions too), the streams and
    their heads, the operations log, the removals, the stream metadata."""
    streams = store.list_streams()
    return {
        "events": list(store.export()),
        "streams": streams,
        "versions": {s.stream_id: store.stream_version(s.stream_id) for s in streams},
        "head": store.head_position(),
        "operations": store.operations(),
        "removals": sorted(store.removals(), key=lambda r: (r.stream_id, r.last_version)),
        "meta": store._stream_metas(),
    }


class LifecycleMovingContract(ContractBase):
    def _source(self, make_store: StoreFactory, tmp_path: Path) -> EventStore:
        source = make_store(archive_dir=str(tmp_path / "source-archives"))
        with_lifecycle(source)
        return source

    def test_an_export_carries_the_lifecycle_and_imports_one_to_one(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = self._source(make_store, tmp_path)
        target = make_store(archive_dir=str(tmp_path / "target-archives"))
        out = io.BytesIO()
        self.export_file(source, out)
        done = self.import_file(
            target, io.BytesIO(out.getvalue()), archives=tmp_path / "source-archives"
        )
        assert done.complete
        assert done.archives is not None
        assert done.archives.copied == len([o for o in source.operations() if o.archive_file])
        assert lifecycle_state(target) == lifecycle_state(source)
        report = target.verify(deep=False)
        assert report.ok, report
        assert not [n for n in report.not_checked if "archive" in n]
        with pytest.raises(StreamDeletedError):
            list(target.read_stream("soft-1"))
        assert [e.version for e in target.read_stream("trunc-1", archived=True)] == [1, 2, 3, 4]

    def test_importing_the_export_again_changes_nothing(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = self._source(make_store, tmp_path)
        target = make_store()
        out = io.BytesIO()
        self.export_file(source, out)
        self.import_file(target, io.BytesIO(out.getvalue()), batch_size=2)
        before = lifecycle_state(target)
        again = self.import_file(target, io.BytesIO(out.getvalue()), batch_size=3)
        assert again.written == 0
        assert lifecycle_state(target) == before

    def test_a_copy_is_identical_and_verifies_with_its_archives(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = self._source(make_store, tmp_path)
        target = make_store(archive_dir=str(tmp_path / "copy-archives"))
        report = self.copy_store(source, target, batch_size=3)
        assert report.archives_copied == len([o for o in source.operations() if o.archive_file])
        assert lifecycle_state(target) == lifecycle_state(source)
        checked = target.verify(deep=False)
        assert checked.ok, checked
        assert not [n for n in checked.not_checked if "archive" in n]
        again = self.copy_store(source, target)
        assert (again.written, again.archives_copied) == (0, 0)
        assert lifecycle_state(target) == lifecycle_state(source)

    def test_a_copy_whose_archive_files_did_not_travel_lists_them_as_not_checked(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = self._source(make_store, tmp_path)
        target = make_store()
        self.copy_store(source, target)
        if target.archive_dir is not None:  # SQLite's default: beside the database file
            for path in target.archive_dir.glob("eventkeep-*"):
                path.unlink()
        report = target.verify(deep=False)
        assert report.ok
        names = [o.archive_file for o in source.operations() if o.archive_file]
        for name in names:
            assert [n for n in report.not_checked if name in n]

    def test_new_events_on_a_copy_are_numbered_above_every_removed_position(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = self._source(make_store, tmp_path)
        target = make_store()
        self.copy_store(source, target)
        head = source.head_position()
        assert target.head_position() == head
        result = target.append("trunc-1", deposits(1), expected_version=4)
        assert result.positions == (head + 1,)
        target.append("hard-1", deposits(1), expected_version=2)  # revives after the deletion
        assert target.verify(deep=False).ok

    def test_a_copy_cut_short_is_finished_by_the_same_copy(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = self._source(make_store, tmp_path)
        target = make_store()

        def stop(report: Any) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            self.copy_store(source, target, batch_size=2, on_batch=stop)
        assert 0 < len(list(target.export())) < len(list(source.export()))
        report = self.copy_store(source, target, batch_size=2)
        assert report.resumed_after > 0
        assert lifecycle_state(target) == lifecycle_state(source)
        assert target.verify(deep=False).ok

    def test_a_copy_resumes_when_the_targets_last_events_were_removed(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = self._source(make_store, tmp_path)
        target = make_store()
        self.copy_store(source, target)
        last = list(source.export())[-1].position
        assert last < source.head_position()  # the log's tail was removed
        again = self.copy_store(source, target)
        assert (again.written, again.resumed_after) == (0, last)

    def test_an_operations_log_is_refused_by_a_store_with_a_history_of_its_own(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = self._source(make_store, tmp_path)
        target = make_store()
        target.append("mine", deposits(1, 2, 3))
        out = io.BytesIO()
        self.export_file(source, out)
        with pytest.raises(ValidationError, match="has given already"):
            self.import_file(target, io.BytesIO(out.getvalue()))
        assert target.operations() == []
        assert len(list(target.export())) == 3

    def test_a_copy_resumed_after_the_source_removed_copied_events_is_refused(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = make_store(archive_dir=str(tmp_path / "archives"))
        source.append("c", deposits(0))
        source.append("a", deposits(1, 2))
        source.append("b", deposits(3, 4))
        target = make_store()
        target.import_(list(source.export())[:3])  # what an interrupted copy left
        source.truncate("a", 2, by="test")  # a copied event
        with pytest.raises(ValidationError, match="has given already"):
            self.copy_store(source, target)
        assert target.operations() == []

    def test_a_copy_resumed_after_the_source_removed_events_not_yet_copied_finishes(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = make_store(archive_dir=str(tmp_path / "archives"))
        source.append("a", deposits(1, 2))
        source.append("b", deposits(3, 4))
        target = make_store()
        target.import_(list(source.export())[:2])  # what an interrupted copy left
        source.truncate("b", 2, by="test")
        report = self.copy_store(source, target)
        assert (report.written, report.resumed_after) == (1, 2)
        assert lifecycle_state(target) == lifecycle_state(source)
        assert target.verify(deep=False).ok

    def test_an_archive_file_changed_after_it_was_written_is_not_taken(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = self._source(make_store, tmp_path)
        target = make_store(archive_dir=str(tmp_path / "target-archives"))
        self.copy_store(source, target)  # the source has an archive directory, the target too
        name = next(o.archive_file for o in source.operations() if o.archive_file)
        changed = tmp_path / "changed"
        changed.mkdir()
        (changed / name).write_bytes(b"not the archive")
        (tmp_path / "target-archives" / name).unlink()
        with pytest.raises(IntegrityError, match="changed after it was written"):
            take_archives(target, changed)
        assert not (tmp_path / "target-archives" / name).exists()

    def test_an_import_without_an_operations_log_keeps_clear_of_the_targets_removals(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = make_store()
        source.append("a", deposits(1, 2, 3))
        target = make_store(archive_dir=str(tmp_path / "archives"))
        target.append("mine", deposits(1, 2, 3, 4, 5))
        target.delete_stream("mine", hard=True, by="test")
        target.import_(source.export())
        assert [r.position for r in target.export()] == [6, 7, 8]
        assert target.verify(deep=False).ok

    def test_a_stream_whose_every_event_was_removed_is_listed_at_its_last_removed_position(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        store = make_store(archive_dir=str(tmp_path / "archives"))
        store.append("gone", deposits(1, 2))
        store.append("kept", deposits(3))
        store.delete_stream("gone", hard=True, by="test")
        listed = {info.stream_id: info for info in store.list_streams()}
        assert (listed["gone"].version, listed["gone"].last_position) == (2, 2)
        assert store.stream_version("gone") == 2

    def test_an_operation_record_naming_a_path_as_its_archive_is_refused(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        source = self._source(make_store, tmp_path)
        target = make_store()
        out = io.BytesIO()
        self.export_file(source, out)
        name = next(o.archive_file for o in source.operations() if o.archive_file)
        assert name is not None
        edited = out.getvalue().replace(name.encode(), b"../../outside.jsonl", 1)
        with pytest.raises(ValidationError, match="not an archive's file name"):
            self.import_file(target, io.BytesIO(edited))
        assert target.operations() == []
        assert target.head_position() == 0

    def test_an_anchor_of_the_source_verifies_on_the_copy(
        self, make_store: StoreFactory, tmp_path: Path
    ) -> None:
        key = load_key(b"carry contract anchor secret, 40 bytes.")
        source = make_store(archive_dir=str(tmp_path / "source-archives"))
        source.append("a", deposits(1, 2, 3))
        source.append("b", deposits(4, 5))
        anchor = source.anchor(key)
        source.truncate("a", 3, by="test")
        source.delete_stream("b", hard=True, by="test")
        target = make_store(archive_dir=str(tmp_path / "target-archives"))
        self.copy_store(source, target)
        report = target.verify(anchor=anchor, key=key)
        assert report.ok, report
        assert not [line for line in report.not_checked if "removed by operation" in line]
