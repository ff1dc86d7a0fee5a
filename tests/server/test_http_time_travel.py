"""Time travel over HTTP: an aggregate's state after each event, for an Aggregate class and for
a Decider over the very same stream."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from http_harness import RunningServer

import eventkeep
from eventkeep.examples.bank.account import BankAccount
from eventkeep.examples.bank.decider import account_decider


@pytest.fixture
def bank(sqlite_store: eventkeep.EventStore) -> Iterator[RunningServer]:
    accounts = eventkeep.Repository(sqlite_store, BankAccount)
    account = accounts.create("bob")
    account.open("Bob")
    account.deposit(Decimal("40.00"))
    account.withdraw(Decimal("15.00"))
    accounts.save(account)
    server = RunningServer(
        sqlite_store, aggregates={"BankAccount": BankAccount, "AccountDecider": account_decider}
    )
    yield server
    server.stop()


@pytest.mark.parametrize("name", ["BankAccount", "AccountDecider"])
def test_the_history_gives_the_state_after_each_event(bank: RunningServer, name: str) -> None:
    with bank.client("read") as http:
        listed = http.get("/v1/aggregates").json()["aggregates"]
        history = http.get(f"/v1/aggregates/{name}/bob").json()
        upto = http.get(f"/v1/aggregates/{name}/bob", params={"to": 2}).json()
    assert {a["name"]: a["ids"] for a in listed}[name] == ["bob"]
    assert history["stream_id"] == "bankaccount-bob"
    balances = [entry["state"]["balance"] for entry in history["history"]]
    assert balances == ["0", "40.00", "25.00"]
    assert [entry["type"] for entry in history["history"]] == [
        "bank.AccountOpened",
        "bank.Deposited",
        "bank.Withdrawn",
    ]
    assert [entry["version"] for entry in upto["history"]] == [1, 2]


def test_an_unknown_aggregate_or_id_is_a_404_problem(bank: RunningServer) -> None:
    with bank.client("read") as http:
        unknown_type = http.get("/v1/aggregates/Nope/bob")
        unknown_id = http.get("/v1/aggregates/BankAccount/nobody")
    assert unknown_type.status_code == 404
    assert "serve --aggregate" in unknown_type.json()["detail"]
    assert unknown_id.status_code == 404
    assert unknown_id.json()["error"] == "NotFoundError"
