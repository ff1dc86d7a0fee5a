"""The export file format (eventkeep.moving.jsonl): byte-exact data, the text fallback, the
header, the end line and side records."""

from __future__ import annotations

import io
import json

import pytest

import eventkeep
from eventkeep.errors import ValidationError
from eventkeep.moving import export_file, import_file, read_export
from eventkeep.moving.jsonl import ExportHeader, SideRecord, encode_event, write_export
from eventkeep.store.hashing import GENESIS, ChainRow, chain_hash


def _row(data: bytes, metadata: bytes = b"{}", position: int = 1) -> ChainRow:
    event_id = bytes(range(16))
    digest = chain_hash(GENESIS, "s", 1, event_id, "T", 1, 1_700_000_000_123_456, data, metadata)
    return ChainRow(
        "s", 1, position, event_id, "T", 1, 1_700_000_000_123_456, data, metadata, digest
    )


def _header() -> ExportHeader:
    from datetime import UTC, datetime

    return ExportHeader(source="memory://", exported_at=datetime.now(UTC), head_position=1)


def _round_trip(rows: list[ChainRow], side: list[SideRecord] | None = None) -> list[object]:
    out = io.BytesIO()
    write_export(out, _header(), rows, side or [])
    reader = read_export(io.BytesIO(out.getvalue()))
    items = list(reader.items())
    assert reader.complete
    return items


def test_stored_bytes_come_back_exactly_embedded_or_as_text() -> None:
    odd = [
        b'{"a":1}',
        b'{ "spaced" :  [1, 2.50, "\\u00e9"] }',
        b'{"a":\n1}',  # a line break between tokens: carried as text
        b' {"a":1}',  # leading whitespace: carried as text
    ]
    rows = [_row(data, position=n) for n, data in enumerate(odd, 1)]
    assert _round_trip(rows) == rows
    lines = [json.loads(encode_event(row)) for row in rows]
    assert [("data" in line, "data_text" in line) for line in lines] == [
        (True, False),
        (True, False),
        (False, True),
        (False, True),
    ]


def test_a_time_with_microseconds_and_a_hash_in_hex() -> None:
    line = json.loads(encode_event(_row(b"{}")))
    assert line["recorded_at"] == "2023-11-14T22:13:20.123456Z"
    assert bytes.fromhex(line["hash"]) == _row(b"{}").hash
    assert "tags" not in line


def test_an_end_line_that_does_not_match_the_events_is_refused() -> None:
    out = io.BytesIO()
    write_export(out, _header(), [_row(b"{}")])
    text = out.getvalue().replace(b'"events":1', b'"events":2')
    reader = read_export(io.BytesIO(text))
    with pytest.raises(ValidationError, match="the end line says 2 events"):
        list(reader.items())


def test_a_broken_line_is_refused_with_its_number() -> None:
    out = io.BytesIO()
    write_export(out, _header(), [_row(b"{}")])
    lines = out.getvalue().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"version":1', b'"version":"one"')
    with pytest.raises(ValidationError, match="line 2"):
        list(read_export(lines).items())


def test_side_records_come_back_and_an_unknown_kind_is_refused_on_import() -> None:
    side = [SideRecord("keys", {"subject": "c-1", "key": "00ff"})]
    items = _round_trip([_row(b"{}")], side)
    assert items[0] == SideRecord("keys", {"subject": "c-1", "key": "00ff"})
    out = io.BytesIO()
    write_export(out, _header(), [_row(b"{}")], side)
    store = eventkeep.open_store("memory://")
    with pytest.raises(ValidationError, match="records of kind 'keys'"):
        import_file(store, io.BytesIO(out.getvalue()))
    assert store.head_position() == 0


def test_an_empty_store_exports_a_header_and_an_end_line() -> None:
    out = io.BytesIO()
    assert export_file(eventkeep.open_store("memory://"), out) == 0
    kinds = [json.loads(line)["kind"] for line in out.getvalue().splitlines()]
    assert kinds == ["header", "end"]
