"""``delete``, ``retention``, ``compact``, ``archive``, ``operations`` and ``read --archived``:
the stream lifecycle from the command line, on a real SQLite file (archives next to it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

Invoke = Callable[..., Result]


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def _fill(cli: Invoke, stream: str = "order-1", count: int = 5) -> None:
    for n in range(count):
        cli("append", stream, "Noted", json.dumps({"n": n}))


def _versions(cli: Invoke, *args: str) -> list[int]:
    return [e["version"] for e in as_json(cli("read", *args, "--json"))]


def test_a_deleted_stream_reads_as_not_found_saying_who_and_why(cli: Invoke) -> None:
    _fill(cli, count=2)
    op = as_json(cli("delete", "order-1", "--by", "ann", "--reason", "duplicate", "--json"))
    assert (op["kind"], op["by"], op["reason"], op["events"]) == ("delete", "ann", "duplicate", 0)
    result = cli("read", "order-1", expect=4)
    assert "deleted at version 2 by ann" in result.output
    assert "duplicate" in result.output


def test_a_hard_delete_writes_its_archive_next_to_the_database(cli: Invoke, tmp_path: Path) -> None:
    _fill(cli, count=2)
    op = as_json(cli("delete", "order-1", "--hard", "--json"))
    assert (tmp_path / "cli.db-archives" / op["archive_file"]).is_file()
    assert as_json(cli("log", "--json")) == []
    assert _versions(cli, "order-1", "--archived") == [1, 2]
    assert "All clear" in cli("verify").output


def test_retention_is_set_shown_and_applied_by_compact_once(cli: Invoke) -> None:
    _fill(cli)
    assert "no retention" in cli("retention", "order-1").output
    shown = as_json(cli("retention", "order-1", "--max-count", "2", "--json"))
    assert shown["retention"]["max_count"] == 2
    first = as_json(cli("compact", "--json"))
    assert first["events"] == 3
    assert as_json(cli("compact", "--json")) == {"events": 0, "operations": []}
    assert _versions(cli, "order-1") == [4, 5]
    assert _versions(cli, "order-1", "--archived") == [1, 2, 3, 4, 5]
    assert "Compacted: 0 events" in cli("compact").output
    cli("retention", "order-1", "--clear")
    assert "no retention" in cli("retention", "order-1").output


def test_archive_moves_a_stream_prefix_or_the_log_prefix(cli: Invoke) -> None:
    _fill(cli, "a", 3)
    _fill(cli, "b", 2)
    op = as_json(cli("archive", "a", "--before-version", "2", "--no-compress", "--json"))
    assert op["archive_file"].endswith(".jsonl")
    assert as_json(cli("archive", "--before-position", "2", "--json")) is None
    logged = as_json(cli("archive", "--before-position", "5", "--json"))
    assert logged["stream_id"] is None
    assert logged["events"] == 3  # positions 2-4 (1 went with the first archive)
    assert [e["position"] for e in as_json(cli("log", "--json"))] == [5]
    kinds = [o["kind"] for o in as_json(cli("operations", "--json"))]
    assert kinds == ["archive", "archive"]
    assert "archive" in cli("operations").output
    assert "All clear" in cli("verify").output


def test_bad_lifecycle_input_exits_2_without_a_traceback(cli: Invoke) -> None:
    _fill(cli, count=1)
    assert "before_version" in cli("archive", "order-1", expect=2).output
    assert "does not exist" in cli("delete", "nobody", expect=2).output
    cli("retention", "order-1", "--max-age", "-5", expect=2)
