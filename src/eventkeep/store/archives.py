"""Archive files: the events a lifecycle operation removed, every stored field, as JSON lines.

The first line is a header (``{"eventkeep_archive": 1, "operation_id": ..., ...}``); each
further line is one event in position order: ``position``, ``stream_id``, ``version``,
``event_id`` (UUID text), ``type``, ``schema_version``, ``recorded_at`` (microseconds since
the epoch, UTC), ``data`` and ``metadata`` (the exact stored JSON bytes, as a string),
``tags`` and ``hash`` (hex). A name ending in ``.gz`` is gzip-compressed (mtime 0, so the
same events give the same bytes). The file's digest is the sha256 of its bytes as written;
the operations log records it, and a ``<name>.sha256`` file beside it carries it in
``sha256sum`` format. Files are written to a temporary name, flushed to disk and renamed; they
are readable by their owner only (mode 0600, a new directory 0700).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from eventkeep.errors import ConfigurationError, IntegrityError, NotFoundError
from eventkeep.store.hashing import ChainRow, row_hash

__all__ = [
    "ARCHIVE_FORMAT",
    "archive_name",
    "file_digest",
    "read_archive",
    "verify_chain_from",
    "write_archive",
]

ARCHIVE_FORMAT = 1
_encode = msgspec.json.Encoder().encode


class _Line(msgspec.Struct):
    position: int
    stream_id: str
    version: int
    event_id: str
    type: str
    schema_version: int
    recorded_at: int
    data: str
    metadata: str
    tags: list[str]
    hash: str


def archive_name(operation_id: str, kind: str, compress: bool) -> str:
    return f"eventkeep-{kind}-{operation_id}.jsonl{'.gz' if compress else ''}"


def _lines(header: dict[str, Any], rows: Sequence[ChainRow]) -> Iterator[bytes]:
    yield _encode(header) + b"\n"
    for row in sorted(rows, key=lambda r: r.position):
        line = _Line(
            row.position,
            row.stream_id,
            row.version,
            str(uuid.UUID(bytes=row.event_id)),
            row.type,
            row.schema_version,
            row.recorded_at_us,
            row.data.decode("utf-8"),
            row.metadata.decode("utf-8"),
            list(row.tags),
            row.hash.hex(),
        )
        yield _encode(line) + b"\n"


def write_archive(
    directory: Path, name: str, header: dict[str, Any], rows: Sequence[ChainRow]
) -> str:
    """Write the archive file ``name`` in ``directory`` (created if missing); returns its
    digest (sha256 hex of the file's bytes)."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the archive directory {directory}: {exc.strerror}"
        ) from exc
    body = b"".join(_lines({"eventkeep_archive": ARCHIVE_FORMAT, **header}, rows))
    if name.endswith(".gz"):
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as packed:
            packed.write(body)
        body = buffer.getvalue()
    digest = hashlib.sha256(body).hexdigest()
    _write_file(directory / name, body)
    _write_file(directory / f"{name}.sha256", f"{digest}  {name}\n".encode())
    return digest


def _write_file(path: Path, body: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        # Owner only, as the database file: archives hold the same (personal) data.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the archive file {path}: {exc.strerror}") from exc


def file_digest(path: Path) -> str | None:
    """The sha256 (hex) of the file's bytes, or None when it is not there."""
    try:
        with open(path, "rb") as source:
            return hashlib.file_digest(source, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def read_archive(path: Path, digest: str) -> list[ChainRow]:
    """The events of the archive at ``path``, after checking its bytes against ``digest``."""
    try:
        body = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(
            f"the archive file {path} is not there (move it back to read archived history)"
        ) from None
    found = hashlib.sha256(body).hexdigest()
    if found != digest:
        raise IntegrityError(
            f"the archive file {path} has sha256 {found}, but the operations log recorded "
            f"{digest}: it was changed after it was written"
        )
    if path.name.endswith(".gz"):
        body = gzip.decompress(body)
    lines = body.splitlines()
    rows: list[ChainRow] = []
    decode = msgspec.json.Decoder(_Line).decode
    for line in lines[1:]:
        item = decode(line)
        rows.append(
            ChainRow(
                item.stream_id,
                item.version,
                item.position,
                uuid.UUID(item.event_id).bytes,
                item.type,
                item.schema_version,
                item.recorded_at,
                item.data.encode("utf-8"),
                item.metadata.encode("utf-8"),
                bytes.fromhex(item.hash),
                tuple(item.tags),
            )
        )
    return rows


def verify_chain_from(previous: bytes, rows: Sequence[ChainRow], last_hash: bytes) -> str | None:
    """Check that ``rows`` (one stream, in version order) chain from ``previous`` and end at
    ``last_hash``; returns what is wrong, or None."""
    for row in rows:
        digest = row_hash(previous, row)
        if digest != row.hash:
            return f"{row.stream_id!r}@{row.version}: the hash does not match the event"
        previous = digest
    if previous != last_hash:
        return "the last archived event is not the one the operations log names"
    return None
