"""``eventkeep backup`` (SQLite's online backup API) while another process keeps appending:
every backup is a consistent store that verifies, holding a prefix of the final history."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import eventkeep
from eventkeep.errors import ConfigurationError, ValidationError
from eventkeep.moving import backup_sqlite
from moving_helpers import SRC, fill

WRITER = """
import sys, eventkeep
store = eventkeep.open_store(sys.argv[1])
n = 0
while True:
    store.append(f"writer-{n % 50}", [eventkeep.RawEvent("Ticked", {"n": n})])
    n += 1
    if n == 1:
        print("started", flush=True)
"""


def test_backups_taken_while_another_process_appends_verify_and_hold_a_prefix(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    with eventkeep.open_store(url, synchronous="OFF") as store:
        fill(store, 20_000)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url],
        env={"PYTHONPATH": str(SRC)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "started"
        heads = []
        with eventkeep.open_store(url) as store:
            for n in range(4):
                before = store.head_position()
                path = backup_sqlite(store, tmp_path / f"backup-{n}.db")
                with eventkeep.open_store(f"sqlite:///{path}") as backup:
                    report = backup.verify()
                    assert report.ok, report
                    heads.append(backup.head_position())
                assert heads[-1] >= before
                time.sleep(0.05)
            after = store.head_position()
    finally:
        writer.kill()
        writer.communicate(timeout=30)
    assert after > heads[0], "the writer did not append during the backups"
    assert heads == sorted(heads)
    with eventkeep.open_store(url) as store:
        final = list(store.export())
    for n, head in enumerate(heads):
        with eventkeep.open_store(f"sqlite:///{tmp_path / f'backup-{n}.db'}") as backup:
            assert list(backup.export()) == final[:head]


def test_a_backup_goes_to_a_new_file_of_a_sqlite_store(tmp_path: Path) -> None:
    with eventkeep.open_store(f"sqlite:///{tmp_path / 'a.db'}") as store:
        store.append("s", [eventkeep.RawEvent("A", {})])
        (tmp_path / "taken.db").write_bytes(b"")
        with pytest.raises(ValidationError, match="exists already"):
            backup_sqlite(store, tmp_path / "taken.db")
        with pytest.raises(ValidationError, match="does not exist"):
            backup_sqlite(store, tmp_path / "nowhere" / "b.db")
        copy = backup_sqlite(store, tmp_path / "b.db")
        assert copy.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ConfigurationError, match="pg_dump"):
        backup_sqlite(eventkeep.open_store("memory://"), tmp_path / "c.db")
