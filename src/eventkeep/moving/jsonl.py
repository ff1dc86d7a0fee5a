"""The export format: JSON lines, one record per line, each an object with a ``kind``.

::

    {"kind":"header","format":"eventkeep-export","format_version":1,"source":"sqlite:///app.db",
     "exported_at":"2026-11-29T21:00:00.000000Z","after":0,"stream_prefix":null,"head_position":2}
    {"kind":"event","position":1,"stream_id":"account-1","version":1,"event_id":"0193...",
     "type":"Deposited","schema_version":1,"recorded_at":"2026-11-29T20:59:58.123456Z",
     "data":{"amount":"10.00"},"metadata":{},"tags":["account:1"],"hash":"9f86d0..."}
    {"kind":"end","events":1}

(one line each in the file). ``data`` and ``metadata`` are the stored JSON bytes, embedded as
they are, so they come back byte for byte; stored bytes that could not stand in a line as they
are (a line break, surrounding whitespace: eventkeep never writes such) go as ``data_text`` /
``metadata_text`` instead, a JSON string holding the stored text. ``recorded_at`` has
microseconds, in UTC; ``hash`` is hex; ``tags`` is left out when there are none; ``position``
is the event's position in the source (kept by the target when it has not given it yet, see
:mod:`eventkeep.store.importing`).
The ``end`` line tells a complete export from one cut short.

Records of other kinds (side records: tables other parts of eventkeep carry, see
:mod:`eventkeep.moving.side`) come after the header and before the first event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any, NamedTuple

import msgspec

from eventkeep.errors import ValidationError
from eventkeep.store.hashing import ChainRow
from eventkeep.store.recorded import from_micros, to_micros

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ExportEnd",
    "ExportHeader",
    "SideRecord",
    "encode_event",
    "read_export",
    "write_export",
]

FORMAT = "eventkeep-export"
FORMAT_VERSION = 1


class ExportHeader(msgspec.Struct, tag_field="kind", tag="header", kw_only=True):
    """The first line of an export."""

    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    source: str
    exported_at: datetime
    head_position: int
    after: int = 0
    stream_prefix: str | None = None


class _EventLine(msgspec.Struct, tag_field="kind", tag="event", omit_defaults=True):
    position: int
    stream_id: str
    version: int
    event_id: uuid.UUID
    type: str
    schema_version: int
    recorded_at: datetime
    hash: str
    data: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    metadata: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    data_text: str | None = None
    metadata_text: str | None = None
    tags: list[str] = []


class ExportEnd(msgspec.Struct, tag_field="kind", tag="end"):
    """The last line of a complete export: how many events it holds."""

    events: int


class SideRecord(NamedTuple):
    """A line of another kind than header, event and end (see :mod:`eventkeep.moving.side`)."""

    kind: str
    record: dict[str, Any]


_encode = msgspec.json.Encoder().encode
_decode_line = msgspec.json.Decoder(ExportHeader | _EventLine | ExportEnd).decode
_decode_any = msgspec.json.Decoder(dict[str, Any]).decode
_WHITESPACE = b" \t\r\n"


def _embeddable(raw: bytes) -> bool:
    """Whether stored JSON bytes can stand in a line as they are and be read back exactly."""
    return (
        bool(raw)
        and raw[:1] not in _WHITESPACE
        and raw[-1:] not in _WHITESPACE
        and raw.find(b"\n") == -1  # find: bytes ``in`` costs twice as much
        and raw.find(b"\r") == -1
    )


def encode_event(row: ChainRow) -> bytes:
    """One event's line (without its newline)."""
    line = _EventLine(
        position=row.position,
        stream_id=row.stream_id,
        version=row.version,
        event_id=uuid.UUID(bytes=row.event_id),
        type=row.type,
        schema_version=row.schema_version,
        recorded_at=from_micros(row.recorded_at_us),
        hash=row.hash.hex(),
        tags=list(row.tags),
    )
    if _embeddable(row.data):
        line.data = msgspec.Raw(row.data)
    else:
        line.data_text = row.data.decode("utf-8")
    if _embeddable(row.metadata):
        line.metadata = msgspec.Raw(row.metadata)
    else:
        line.metadata_text = row.metadata.decode("utf-8")
    return _encode(line)


def write_export(
    out: IO[bytes],
    header: ExportHeader,
    rows: Iterable[ChainRow],
    side: Iterable[SideRecord] = (),
) -> int:
    """Write a whole export to ``out``: the header, side records, events, the end line.
    Returns how many events were written."""
    write = out.write
    write(_encode(header) + b"\n")
    for item in side:
        write(_encode({"kind": item.kind, **item.record}) + b"\n")
    count = 0
    for row in rows:
        write(encode_event(row) + b"\n")
        count += 1
    write(_encode(ExportEnd(count)) + b"\n")
    return count


class ExportReader:
    """Reads an export: ``header`` at once, then ``items()``: events (``ChainRow``) and side
    records, in file order. ``complete`` is True once the end line was read and matched."""

    def __init__(self, lines: Iterable[bytes], name: str = "the export") -> None:
        self._lines = iter(lines)
        self._name = name
        self._number = 0
        self.complete = False
        self.events = 0
        first = self._next()
        if first is None:
            raise ValidationError(f"{name} is empty: not an eventkeep export")
        try:
            head = _decode_any(first)
        except msgspec.DecodeError:
            head = {}
        if head.get("kind") != "header" or head.get("format") != FORMAT:
            raise ValidationError(
                f"{name} line {self._number} is not an eventkeep export header (an export "
                f'starts with {{"kind":"header","format":"{FORMAT}",...}})'
            )
        if head.get("format_version") != FORMAT_VERSION:
            raise ValidationError(
                f"{name} has export format version {head.get('format_version')!r}; this "
                f"eventkeep reads version {FORMAT_VERSION} (upgrade eventkeep to import it)"
            )
        item = self._parse(first, header=True)
        assert isinstance(item, ExportHeader)
        self.header = item

    def _next(self) -> bytes | None:
        for line in self._lines:
            self._number += 1
            if line.strip():
                return line
        return None

    def _parse(self, line: bytes, *, header: bool = False) -> Any:
        try:
            return _decode_line(line)
        except msgspec.DecodeError as exc:
            kind = self._kind(line)
            if kind is not None and kind not in ("header", "event", "end") and not header:
                fields = _decode_any(line)
                del fields["kind"]
                return SideRecord(kind, fields)
            raise ValidationError(f"{self._name} line {self._number}: {exc}") from exc

    @staticmethod
    def _kind(line: bytes) -> str | None:
        try:
            kind = _decode_any(line).get("kind")
        except msgspec.DecodeError:
            return None
        return kind if isinstance(kind, str) else None

    def items(self) -> Iterator[ChainRow | SideRecord]:
        while (line := self._next()) is not None:
            if self.complete:
                raise ValidationError(
                    f"{self._name} line {self._number}: a record after the end line"
                )
            item = self._parse(line)
            if isinstance(item, _EventLine):
                self.events += 1
                yield self._row(item)
            elif isinstance(item, ExportEnd):
                if item.events != self.events:
                    raise ValidationError(
                        f"{self._name}: the end line says {item.events} events, but "
                        f"{self.events} came before it"
                    )
                self.complete = True
            elif isinstance(item, SideRecord):
                if self.events:
                    raise ValidationError(
                        f"{self._name} line {self._number}: a {item.kind!r} record after the "
                        "first event (side records come before the events)"
                    )
                yield item
            else:
                raise ValidationError(f"{self._name} line {self._number}: a second header")

    def _row(self, line: _EventLine) -> ChainRow:
        where = f"{self._name} line {self._number}"
        data = _payload(line.data, line.data_text, "data", where)
        metadata = _payload(line.metadata, line.metadata_text, "metadata", where)
        try:
            digest = bytes.fromhex(line.hash)
        except ValueError:
            raise ValidationError(f"{where}: hash is not hex: {line.hash!r:.80}") from None
        if line.recorded_at.tzinfo is None:
            raise ValidationError(f"{where}: recorded_at has no time zone")
        return ChainRow(
            line.stream_id,
            line.version,
            line.position,
            line.event_id.bytes,
            line.type,
            line.schema_version,
            to_micros(line.recorded_at),
            data,
            metadata,
            digest,
            tuple(line.tags),
        )


def _payload(
    raw: msgspec.Raw | msgspec.UnsetType, text: str | None, what: str, where: str
) -> bytes:
    if isinstance(raw, msgspec.Raw):
        if text is not None:
            raise ValidationError(f"{where}: both {what} and {what}_text are given")
        return bytes(raw)
    if text is None:
        raise ValidationError(f"{where}: the event has no {what}")
    try:
        encoded = text.encode("utf-8")
        _decode_any(encoded)
    except (UnicodeEncodeError, msgspec.DecodeError) as exc:
        raise ValidationError(f"{where}: {what}_text is not a JSON object ({exc})") from exc
    return encoded


def read_export(lines: Iterable[bytes], name: str = "the export") -> ExportReader:
    """Open an export for reading (``lines``: a binary file, or any iterable of lines)."""
    return ExportReader(lines, name)
