"""``eventkeep forget SUBJECT`` and ``eventkeep forgotten``: erasure from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import Result

import eventkeep
from eventkeep.testing.events import CustomerRegistered

Invoke = Callable[..., Result]


def _register(url: str, *customers: str) -> None:
    with eventkeep.open_store(url) as store:
        for customer in customers:
            store.append(
                f"customer-{customer}",
                [CustomerRegistered(customer_id=customer, email=f"{customer}@example.com")],
            )


def _emails(cli: Invoke, stream: str) -> list[str]:
    return [e["data"]["email"] for e in json.loads(cli("read", stream, "--json").stdout)]


def test_forget_destroys_the_key_and_the_read_commands_show_the_redacted_value(
    cli: Invoke, db_url: str
) -> None:
    _register(db_url, "c1", "c2")
    assert _emails(cli, "customer-c1") == ["c1@example.com"]
    out = cli("forget", "c1", "--reason", "GDPR request 118", "--by", "dpo").stdout
    assert "Forgot c1" in out
    assert "Forget log entry 1 (by dpo)" in out
    assert _emails(cli, "customer-c1") == [eventkeep.REDACTED]
    assert _emails(cli, "customer-c2") == ["c2@example.com"]
    log = json.loads(cli("read-all", "--json").stdout)
    assert [e["data"]["email"] for e in log] == [eventkeep.REDACTED, "c2@example.com"]
    assert "c1@example.com" not in cli("read-all").stdout
    query = json.loads(cli("query", "--tag", "customer:c1", "--json").stdout)
    assert [e["data"]["email"] for e in query["events"]] == [eventkeep.REDACTED]
    assert cli("verify").stdout.startswith("All clear: 2 events")


def test_forgetting_twice_or_an_unknown_subject_says_so_without_an_error(
    cli: Invoke, db_url: str
) -> None:
    _register(db_url, "c1")
    cli("forget", "c1", "--by", "dpo")
    again = cli("forget", "c1").stdout
    assert "c1 was already forgotten" in again
    assert "by dpo" in again
    unknown = cli("forget", "nobody").stdout
    assert "No key for nobody" in unknown
    report = json.loads(cli("forget", "nobody", "--json", "--by", "me").stdout)
    assert report["had_key"] is False
    assert report["by"] == "me"
    assert len(report["forgotten_before"]) == 1


def test_forgotten_lists_the_forget_log_without_the_data(cli: Invoke, db_url: str) -> None:
    _register(db_url, "c1")
    assert "Nothing has been forgotten" in cli("forgotten").stdout
    cli("forget", "c1", "--by", "dpo", "--reason", "ticket 7")
    entries = json.loads(cli("forgotten", "--json").stdout)
    assert [(e["seq"], e["subject"], e["by"], e["reason"], e["had_key"]) for e in entries] == [
        (1, "c1", "dpo", "ticket 7", True)
    ]
    table = cli("forgotten").stdout
    assert "ticket 7" in table
    assert "c1@example.com" not in table


def test_forget_refuses_an_empty_subject_with_a_message(cli: Invoke, db_url: str) -> None:
    _register(db_url, "c1")
    result = cli("forget", "", expect=2)
    assert "subject" in result.output


def test_projection_status_names_the_subjects_forgotten_since_the_last_rebuild(
    cli: Invoke, db_url: str
) -> None:
    _register(db_url, "c1", "c2")
    balances = "eventkeep.examples.bank.readmodels:AccountBalances"
    cli("projections", "run", balances, "--until-caught-up", "--quiet")
    cli("forget", "c1")
    table = cli("projections", "status").stdout  # the cell wraps at 80 columns
    assert "forgotten" in table
    assert "rebuild: c1" in table
    [row] = json.loads(cli("projections", "status", "--json").stdout)
    assert row["forgotten"] == ["c1"]
    cli("projections", "rebuild", balances)
    [row] = json.loads(cli("projections", "status", "--json").stdout)
    assert row["forgotten"] == []
