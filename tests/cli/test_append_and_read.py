"""Appending through the CLI and reading back, as tables and as JSON."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from click.testing import Result

import eventkeep

Invoke = Callable[..., Result]


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_an_appended_event_reads_back_with_its_data_and_metadata(cli: Invoke) -> None:
    cli("append", "account-1", "Opened", '{"owner": "Ada"}', "-e", "no_stream")
    cli(
        "append",
        "account-1",
        "Deposited",
        '{"amount": "10.00"}',
        "--expected-version",
        "1",
        "--metadata",
        '{"correlation_id": "c-1", "user": "ada"}',
    )
    events = as_json(cli("read", "account-1", "--json"))
    assert [(e["version"], e["position"], e["type"]) for e in events] == [
        (1, 1, "Opened"),
        (2, 2, "Deposited"),
    ]
    assert events[1]["data"] == {"amount": "10.00"}
    assert events[1]["metadata"] == {"correlation_id": "c-1", "user": "ada"}
    assert events[0]["metadata"] == {}


def test_read_json_is_one_array_with_one_event_per_line(cli: Invoke) -> None:
    for n in range(3):
        cli("append", "s", "Ticked", f'{{"n": {n}}}')
    out = cli("read", "s", "--json").stdout
    lines = out.splitlines()
    assert lines[0] == "["
    assert lines[-1] == "]"
    assert len(lines) == 5
    event = as_json(cli("read", "s", "--json"))[0]
    assert list(event) == [
        "position",
        "stream_id",
        "version",
        "type",
        "schema_version",
        "event_id",
        "recorded_at",
        "data",
        "metadata",
    ]
    uuid.UUID(event["event_id"])
    recorded = datetime.fromisoformat(event["recorded_at"])
    assert recorded.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - recorded) < timedelta(minutes=5)


def test_append_json_reports_where_the_event_was_written(cli: Invoke) -> None:
    cli("append", "other", "Noise")
    result = as_json(cli("append", "s", "Started", "{}", "--json"))
    assert result["stream_id"] == "s"
    assert (result["version"], result["position"], result["type"]) == (1, 2, "Started")
    assert as_json(cli("read", "s", "--json"))[0]["event_id"] == result["event_id"]


def test_data_may_come_from_stdin_and_defaults_to_an_empty_object(cli: Invoke) -> None:
    cli("append", "s", "Piped", "-", input='{"from": "stdin"}\n')
    cli("append", "s", "Empty")
    data = [e["data"] for e in as_json(cli("read", "s", "--json"))]
    assert data == [{"from": "stdin"}, {}]


def test_numbers_decimals_and_big_integers_are_kept_exactly(cli: Invoke) -> None:
    text = '{"price": "10.10", "ratio": 0.1, "big": 123456789012345678901234567890}'
    cli("append", "s", "Priced", text)
    [event] = as_json(cli("read", "s", "--json"))
    assert event["data"] == {"price": "10.10", "ratio": 0.1, "big": 123456789012345678901234567890}


class CliTestPaid(eventkeep.Event):
    __event_type__ = "CliTestPaid"
    amount: Decimal
    payment_id: uuid.UUID
    due: datetime


def test_typed_events_show_decimals_uuids_and_datetimes_as_exact_strings(
    cli: Invoke, db_url: str
) -> None:

    paid = CliTestPaid(
        amount=Decimal("0.30"),
        payment_id=uuid.UUID(int=7),
        due=datetime(2024, 1, 31, 23, 59, 59, 123456, tzinfo=UTC),
    )
    with eventkeep.open_store(db_url) as store:
        store.append("invoice-1", [paid])
    [event] = as_json(cli("read", "invoice-1", "--json"))
    assert event["data"] == {
        "amount": "0.30",
        "payment_id": "00000000-0000-0000-0000-000000000007",
        "due": "2024-01-31T23:59:59.123456Z",
    }
    table = cli("read", "invoice-1").stdout
    assert '"amount":"0.30"' in table


def test_a_wrong_expected_version_exits_3_and_writes_nothing(cli: Invoke) -> None:
    cli("append", "s", "First", "-e", "no_stream")
    result = cli("append", "s", "Second", "-e", "0", expect=3)
    assert result.stderr.strip() == "Error: stream 's': expected version 0, actual version 1"
    cli("append", "s", "Again", "-e", "no_stream", expect=3)
    cli("append", "fresh", "Again", "-e", "stream_exists", expect=3)
    assert [e["type"] for e in as_json(cli("read", "s", "--json"))] == ["First"]
    cli("read", "fresh", expect=4)
    cli("append", "s", "Second", "-e", "1")
    cli("append", "s", "Third", "-e", "stream-exists")


def test_resending_an_append_with_the_same_event_id_writes_nothing(cli: Invoke) -> None:
    event_id = str(uuid.uuid4())
    first = as_json(cli("append", "s", "Paid", '{"n": 1}', "--event-id", event_id, "--json"))
    again = as_json(cli("append", "s", "Paid", '{"n": 1}', "--event-id", event_id, "--json"))
    assert first == again
    result = cli("append", "s", "Paid", '{"n": 2}', "--event-id", event_id, expect=2)
    assert "already stored for a different event" in result.stderr
    assert len(as_json(cli("read", "s", "--json"))) == 1


def test_read_takes_a_version_range_backwards_and_a_limit(cli: Invoke) -> None:
    for n in range(1, 6):
        cli("append", "s", "Ticked", f'{{"n": {n}}}')

    def versions(*args: str) -> list[int]:
        return [e["version"] for e in as_json(cli("read", "s", "--json", *args))]

    assert versions("--from", "2", "--to", "4") == [2, 3, 4]
    assert versions("--backwards", "--limit", "1") == [5]
    assert versions("-b", "--from", "2", "--to", "4") == [4, 3, 2]
    assert versions("--from", "9") == []


def test_the_stream_table_fits_80_columns_and_prints_data_verbatim(cli: Invoke) -> None:
    long_note = "a long note that has to wrap inside the data column " * 3
    cli("append", "account-1", "Deposited", f'{{"amount": "10.00", "note": "{long_note}"}}')
    cli("append", "account-1", "Marked", '{"t": "[b]x[/b]"}')
    out = cli("read", "account-1").stdout
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert "account-1 (version 2)" in out
    assert '{"t":"[b]x[/b]"}' in out
    assert "Deposited" in out
    assert "2 events" in out


def test_reading_a_stream_that_does_not_exist_exits_4(cli: Invoke) -> None:
    cli("append", "s", "Exists")
    result = cli("read", "nope", expect=4)
    assert result.stderr == "Error: stream 'nope' does not exist\n"
    assert result.stdout == ""
