"""The SQLite knobs: synchronous and busy_timeout from the URL or keywords, bad values refused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import eventkeep
from eventkeep import ConfigurationError, EventStore
from eventkeep.backends.sqlite import SQLiteStore

SYNCHRONOUS = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}


@contextmanager
def opened(url: str, **options: Any) -> Iterator[EventStore]:
    store = eventkeep.open_store(url, **options)
    try:
        yield store
    finally:
        store.close()


def pragma(store: EventStore, name: str) -> Any:
    return store._conn.execute(f"PRAGMA {name}").fetchone()[0]  # type: ignore[attr-defined]


def test_the_default_is_wal_with_synchronous_full(tmp_path: Path) -> None:
    with opened(f"sqlite:///{tmp_path / 'default.db'}") as store:
        assert pragma(store, "journal_mode") == "wal"
        assert pragma(store, "synchronous") == SYNCHRONOUS["FULL"]
        assert pragma(store, "busy_timeout") == 10_000


@pytest.mark.parametrize("mode", ["NORMAL", "normal", "OFF", "EXTRA", "FULL"])
def test_synchronous_from_the_url_is_honoured(tmp_path: Path, mode: str) -> None:
    with opened(f"sqlite:///{tmp_path / 'url.db'}?synchronous={mode}") as store:
        assert pragma(store, "synchronous") == SYNCHRONOUS[mode.upper()]
        assert store.synchronous == mode.upper()  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["NORMAL", "Normal", "EXTRA"])
def test_synchronous_keyword_is_honoured(tmp_path: Path, mode: str) -> None:
    with opened(f"sqlite:///{tmp_path / 'kw.db'}", synchronous=mode) as store:
        assert pragma(store, "synchronous") == SYNCHRONOUS[mode.upper()]
    direct = SQLiteStore(tmp_path / "direct.db", synchronous=mode)
    try:
        assert pragma(direct, "synchronous") == SYNCHRONOUS[mode.upper()]
    finally:
        direct.close()


def test_busy_timeout_from_the_url_is_honoured(tmp_path: Path) -> None:
    with opened(f"sqlite:///{tmp_path / 'busy.db'}?busy_timeout=0.2") as store:
        assert pragma(store, "busy_timeout") == 200


@pytest.mark.parametrize(
    ("query", "options", "message"),
    [
        ("?synchronous=FAST", {}, "synchronous must be one of OFF, NORMAL, FULL, EXTRA"),
        ("", {"synchronous": "sometimes"}, "synchronous must be one of"),
        ("", {"synchronous": 2}, "synchronous must be one of"),
        ("?synchronous=", {}, "synchronous must be one of"),
        ("?busy_timeout=soon", {}, "busy_timeout='soon' is not a number"),
        ("", {"busy_timeout": -1}, "busy_timeout must be a finite number of seconds from 0"),
        ("?busy_timeout=nan", {}, "busy_timeout must be a finite number of seconds"),
        ("?busy_timeout=inf", {}, "busy_timeout must be a finite number of seconds"),
        ("", {"busy_timeout": True}, "busy_timeout must be a finite number of seconds"),
        ("?file_mode=0644x", {}, "file_mode must be permission bits"),
        ("", {"file_mode": 0o400}, "file_mode must be permission bits"),
        ("?sync=FULL", {}, "unknown store option"),
        ("", {"journal_mode": "DELETE"}, "unknown store option"),
    ],
)
def test_an_invalid_setting_is_a_configuration_error_and_creates_no_file(
    tmp_path: Path, query: str, options: dict[str, Any], message: str
) -> None:
    path = tmp_path / "bad.db"
    with pytest.raises(ConfigurationError, match=message):
        eventkeep.open_store(f"sqlite:///{path}{query}", **options)
    assert not path.exists()
