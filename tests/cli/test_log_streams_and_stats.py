"""The global log, the stream listing and the counts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result

Invoke = Callable[..., Result]


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def _fill(cli: Invoke) -> None:
    cli("append", "account-1", "Opened", '{"owner": "Ada"}')
    cli("append", "account-2", "Opened", '{"owner": "Bob"}')
    cli("append", "account-1", "Deposited", '{"amount": "5.00"}')
    cli("append", "order-1", "Placed", "{}")
    cli("append", "account-2", "Withdrawn", '{"amount": "1.00"}')


def test_the_global_log_lists_every_stream_in_position_order(cli: Invoke) -> None:
    _fill(cli)
    events = as_json(cli("read-all", "--json"))
    assert [(e["position"], e["stream_id"], e["version"]) for e in events] == [
        (1, "account-1", 1),
        (2, "account-2", 1),
        (3, "account-1", 2),
        (4, "order-1", 1),
        (5, "account-2", 2),
    ]
    assert as_json(cli("log", "--json")) == events


def test_the_log_filters_by_checkpoint_limit_type_and_prefix(cli: Invoke) -> None:
    _fill(cli)

    def positions(*args: str) -> list[int]:
        return [e["position"] for e in as_json(cli("log", "--json", *args))]

    assert positions("--after", "3") == [4, 5]
    assert positions("--after", "1", "--limit", "2") == [2, 3]
    assert positions("--type", "Opened") == [1, 2]
    assert positions("-t", "Deposited", "-t", "Withdrawn") == [3, 5]
    assert positions("--prefix", "account-") == [1, 2, 3, 5]
    assert positions("--prefix", "account-", "--type", "Opened", "--after", "1") == [2]
    assert positions("--type", "Unknown") == []


def test_the_log_table_fits_80_columns(cli: Invoke) -> None:
    _fill(cli)
    out = cli("log").stdout
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert "global log" in out
    assert "order-1" in out
    assert "5 events" in out


def test_an_empty_log_prints_an_empty_array(cli: Invoke) -> None:
    cli("append", "s", "Only")
    assert cli("log", "--after", "1", "--json").stdout == "[]\n"
    assert "0 events" in cli("log", "--after", "1").stdout


def test_streams_lists_versions_and_last_positions_by_prefix(cli: Invoke) -> None:
    _fill(cli)
    assert as_json(cli("streams", "--json")) == [
        {"stream_id": "account-1", "version": 2, "last_position": 3},
        {"stream_id": "account-2", "version": 2, "last_position": 5},
        {"stream_id": "order-1", "version": 1, "last_position": 4},
    ]
    listed = as_json(cli("streams", "--prefix", "account-", "--limit", "1", "--json"))
    assert [s["stream_id"] for s in listed] == ["account-1"]
    out = cli("streams").stdout
    assert "account-2" in out
    assert "3 streams" in out


def test_stats_counts_events_streams_and_types(cli: Invoke, db_url: str) -> None:
    _fill(cli)
    assert as_json(cli("stats", "--json")) == {
        "events": 5,
        "streams": 3,
        "head_position": 5,
        "types": {"Deposited": 1, "Opened": 2, "Placed": 1, "Withdrawn": 1},
    }
    out = cli("stats").stdout
    assert "".join(out.split()).startswith("Store" + db_url)
    assert "Opened" in out
    assert all(len(line) <= 80 for line in out.splitlines()), out


def test_a_long_log_prints_in_several_tables_as_it_reads(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventkeep.cli import read as read_module

    monkeypatch.setattr(read_module, "ROWS_PER_TABLE", 2)
    _fill(cli)
    out = cli("log").stdout
    assert out.count("global log, continued") == 2
    assert out.rstrip().endswith("5 events")
    assert cli("log", "--limit", "4").stdout.count("continued") == 1
