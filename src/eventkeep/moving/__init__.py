"""Moving history: export and import (JSON lines), copying one store into another, backups.

- :func:`export_events` / ``store.export()``: the stored events in log order, exactly as stored.
- :func:`import_events` / ``store.import_(rows)``: write them into another store as they are,
  every hash checked against its chain first; idempotent.
- :func:`write_export` / :func:`read_export`: the JSON lines format (docs/moving.md).
- :func:`copy_store`: one store into another, one to one, resumable.
- :func:`backup_sqlite`: a consistent copy of a SQLite store's file while writers run.
- :func:`take_archives`: the archive files an imported operations log names, from a directory.
"""

from eventkeep.moving.backup import backup_sqlite
from eventkeep.moving.files import FileImport, export_file, import_file
from eventkeep.moving.jsonl import (
    FORMAT,
    FORMAT_VERSION,
    ExportHeader,
    read_export,
    write_export,
)
from eventkeep.moving.lifecycle import ArchiveCopy, take_archives
from eventkeep.moving.transfer import (
    BULK_LOAD_FROM,
    COPY_BATCH_SIZE,
    CopyReport,
    copy_store,
    export_events,
    import_events,
    resume_position,
)
from eventkeep.store.importing import ImportReport

__all__ = [
    "BULK_LOAD_FROM",
    "COPY_BATCH_SIZE",
    "FORMAT",
    "FORMAT_VERSION",
    "ArchiveCopy",
    "CopyReport",
    "ExportHeader",
    "FileImport",
    "ImportReport",
    "backup_sqlite",
    "copy_store",
    "export_events",
    "export_file",
    "import_events",
    "import_file",
    "read_export",
    "resume_position",
    "take_archives",
    "write_export",
]
