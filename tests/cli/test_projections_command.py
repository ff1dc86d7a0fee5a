"""``eventkeep projections run|status|rebuild|reset|skip|retry``."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

import eventkeep
from eventkeep.cli import main
from eventkeep.examples.bank import BankAccount
from eventkeep.examples.bank.transfers import request_transfer

BALANCES = "eventkeep.examples.bank.readmodels:AccountBalances"
TRANSFERS = "eventkeep.examples.bank.transfers:TransferProcessor"


@pytest.fixture
def bank_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    with eventkeep.open_store(url) as store:
        accounts = eventkeep.Repository(store, BankAccount)
        for name in ("alice", "bob"):
            account = accounts.create(name)
            account.open(owner=name.title())
            account.deposit(Decimal("100.00"))
            accounts.save(account)
        request_transfer(store, "alice", "bob", Decimal("30.00"))
    return url


def cli(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--store", url, "projections", *args])
    return result.exit_code, result.output


def balances(url: str) -> list[tuple[str, int]]:
    with eventkeep.open_store(url) as store, store.transaction() as tx:
        rows = tx.execute("SELECT account, balance_cents FROM account_balances ORDER BY account")
    return [(str(a), int(b)) for a, b in rows]


def test_run_until_caught_up_then_status(bank_url: str) -> None:
    code, out = cli(bank_url, "run", BALANCES, TRANSFERS, "--until-caught-up", "--quiet")
    assert code == 0, out
    code, out = cli(bank_url, "run", BALANCES, "--until-caught-up", "--quiet")
    assert code == 0, out
    assert balances(bank_url) == [("alice", 7000), ("bob", 13000)]
    code, out = cli(bank_url, "status")
    assert code == 0, out
    assert "bank.account_balances" in out
    assert "bank.transfers" in out
    code, out = cli(bank_url, "status", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["bank.transfers"]["position"] == 8
    assert rows["bank.transfers"]["state"] == "stopped"


def test_rebuild_shows_progress_and_swaps_in_a_new_generation(bank_url: str) -> None:
    cli(bank_url, "run", BALANCES, TRANSFERS, "--until-caught-up", "--quiet")
    code, out = cli(bank_url, "rebuild", BALANCES)
    assert code == 0, out
    assert "rebuilding bank.account_balances" in out
    assert "generation 2" in out
    assert balances(bank_url) == [("alice", 7000), ("bob", 13000)]


def test_reset_drops_the_read_model(bank_url: str) -> None:
    cli(bank_url, "run", BALANCES, "--until-caught-up", "--quiet")
    code, out = cli(bank_url, "reset", "bank.account_balances", "--yes")
    assert code == 0, out
    code, out = cli(bank_url, "status", "--json")
    assert json.loads(out) == []
    code, out = cli(bank_url, "reset", "bank.account_balances", "--yes")
    assert code == 4


def test_skip_refuses_an_event_the_projection_is_not_stuck_on(bank_url: str) -> None:
    cli(bank_url, "run", BALANCES, "--until-caught-up", "--quiet")
    code, out = cli(bank_url, "skip", "bank.account_balances", "3", "--reason", "test")
    assert code == 2
    assert "only the failing event can be skipped" in out
    code, out = cli(bank_url, "retry", "bank.account_balances")
    assert code == 0, out


def test_a_bad_target_is_a_usage_error(bank_url: str) -> None:
    code, out = cli(bank_url, "run", "no_such_module:Thing", "--until-caught-up")
    assert code == 2
    assert "cannot import" in out
    code, out = cli(bank_url, "run", "eventkeep:Event", "--until-caught-up")
    assert code == 2
    assert "not a Projection" in out
