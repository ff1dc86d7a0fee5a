"""A new SQLite store is owner-only on disk: the database file and its -wal and -shm files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventkeep import RawEvent, open_store


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _modes(path: Path) -> dict[str, int]:
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    return {f.name: stat.S_IMODE(os.stat(f).st_mode) for f in files}


@pytest.mark.usefixtures("umask_022")
def test_a_new_database_and_its_wal_and_shm_are_created_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "private.db"
    with open_store(f"sqlite:///{path}") as store:
        store.append("person-1", [RawEvent("Registered", {"name": "Ada"})])
        assert _modes(path) == {
            "private.db": 0o600,
            "private.db-wal": 0o600,
            "private.db-shm": 0o600,
        }


@pytest.mark.usefixtures("umask_022")
def test_file_mode_option_sets_the_permissions(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with open_store(f"sqlite:///{path}?file_mode=0640") as store:
        store.append("s", [RawEvent("T", {})])
        assert set(_modes(path).values()) == {0o640}
    other = tmp_path / "kw.db"
    with open_store(f"sqlite:///{other}", file_mode=0o660) as store:
        store.append("s", [RawEvent("T", {})])
        assert set(_modes(other).values()) == {0o660}


@pytest.mark.usefixtures("umask_022")
def test_an_existing_database_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with open_store(f"sqlite:///{path}") as store:
        store.append("s", [RawEvent("T", {})])
    os.chmod(path, 0o644)
    with open_store(f"sqlite:///{path}") as store:
        assert store.stream_version("s") == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
