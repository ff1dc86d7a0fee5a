"""``eventkeep verify`` on an intact store and on one edited behind the triggers' back."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest
from click.testing import Result

Invoke = Callable[..., Result]


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


TRIGGER = "events_are_append_only_update"


def _trigger_sql() -> str:
    """The trigger's CREATE statement, as the shipped migration writes it."""
    migration = resources.files("eventkeep.backends.sqlite").joinpath("migrations/0001_initial.sql")
    found = re.search(rf"CREATE TRIGGER {TRIGGER}\b.*?\bEND;", migration.read_text(), re.S)
    assert found is not None
    return found.group()


def _tamper(path: str, stream_id: str, version: int, data: str) -> None:
    """Drop the append-only trigger, edit a stored event, and put the trigger back."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"DROP TRIGGER {TRIGGER}")
        edited = conn.execute(
            "UPDATE events SET data = ? WHERE stream_id = ? AND version = ?",
            (data, stream_id, version),
        )
        assert edited.rowcount == 1
        conn.execute(_trigger_sql())
        conn.execute("COMMIT")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE events SET type = 'X'")
    finally:
        conn.close()


def _fill(cli: Invoke) -> None:
    for n in range(1, 4):
        cli("append", "account-1", "Deposited", f'{{"amount": "{n}.00"}}')
        cli("append", "account-2", "Deposited", f'{{"amount": "{n}.00"}}')
    cli("append", "account-3", "Opened")


def test_verify_is_all_clear_with_the_count_of_events_checked(cli: Invoke) -> None:
    _fill(cli)
    out = cli("verify").stdout
    assert out.startswith("All clear: 7 events in 3 streams checked, every hash chain is intact.\n")
    assert "Checked:\n  - the hash chains of 3 streams (7 events)\n" in out
    assert "  - the database file (PRAGMA integrity_check)\n" in out
    assert "Not checked:\n  - the history as a whole (no anchor given)" in out
    report = as_json(cli("verify", "--json"))
    assert {k: report[k] for k in ("ok", "events_checked", "streams_checked", "broken")} == {
        "ok": True,
        "events_checked": 7,
        "streams_checked": 3,
        "broken": [],
    }
    assert report["problems"] == []
    assert "the database file (PRAGMA integrity_check)" in report["checked"]
    assert len(report["not_checked"]) == 1


def test_verify_quick_skips_the_database_check(cli: Invoke) -> None:
    _fill(cli)
    report = as_json(cli("verify", "--quick", "--json"))
    assert report["ok"] is True
    assert "the database file (PRAGMA integrity_check)" not in report["checked"]
    assert any("skipped" in item for item in report["not_checked"])


def test_an_edited_event_is_reported_at_its_stream_and_version_with_exit_1(
    cli: Invoke, db_url: str
) -> None:

    _fill(cli)
    path = db_url.removeprefix("sqlite:///")
    _tamper(path, "account-1", 2, '{"amount":"2000000.00"}')
    _tamper(path, "account-2", 3, '{"amount":"0.00"}')

    result = cli("verify", expect=1)
    assert "account-1" in result.stdout
    assert "account-2" in result.stdout
    assert "account-3" not in result.stdout
    assert result.stderr == (
        "Error: verify found 2 broken hash chains (7 events in 3 streams checked)\n"
    )

    report = as_json(cli("verify", "--json", expect=1))
    assert report["ok"] is False
    assert [(b["stream_id"], b["version"], b["position"]) for b in report["broken"]] == [
        ("account-1", 2, 3),
        ("account-2", 3, 6),
    ]
    assert "hash does not match" in report["broken"][0]["reason"]
