"""Fixtures for the SQLite backend's tests: real OS processes, real files, bounded waits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_harness import Workers


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """A launcher of worker processes; any still running at teardown are killed."""
    launcher = Workers(tmp_path)
    yield launcher
    launcher.stop_all()
