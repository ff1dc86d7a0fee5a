"""``eventkeep snapshots rebuild|delete CATEGORY``."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

import eventkeep
from eventkeep.cli import main
from eventkeep.examples.bank import BankAccount


def make_bank(path: Path) -> str:
    url = f"sqlite:///{path}"
    with eventkeep.open_store(url) as store:
        accounts = eventkeep.Repository(store, BankAccount, snapshots=False)
        for name, deposits in (("alice", 60), ("bob", 3)):
            account = accounts.create(name)
            account.open(owner=name.title())
            for _ in range(deposits):
                account.deposit(Decimal("1.00"))
            accounts.save(account)
        store.save_snapshot("bankaccount-alice", 10, "BankAccount", 1, b'{"balance": "-5"}')
    return url


def run(*args: str, expect: int = 0) -> str:
    result = CliRunner(env={"COLUMNS": "80", "EVENTKEEP_STORE": None}).invoke(main, list(args))
    assert result.exit_code == expect, (result.output, result.exception)
    return result.output


def test_rebuild_writes_fresh_snapshots_for_a_category(tmp_path: Path) -> None:
    url = make_bank(tmp_path / "bank.db")
    out = run(
        "--store", url, "snapshots", "rebuild", "bankaccount", "--import", "eventkeep.examples.bank"
    )
    assert "Rebuilt the snapshots of bankaccount: 2 streams read, 1 snapshot written, 1 old" in out
    with eventkeep.open_store(url) as store:
        snapshot = store.load_snapshot("bankaccount-alice")
        assert snapshot is not None
        assert snapshot.version == 61
        assert store.load_snapshot("bankaccount-bob") is None
        assert eventkeep.Repository(store, BankAccount).load("alice").balance == Decimal("60.00")
    out = run("--store", url, "snapshots", "rebuild", "bankaccount", "--json")
    assert json.loads(out) == {"category": "bankaccount", "streams": 2, "written": 1, "deleted": 1}


def test_rebuild_explains_an_unknown_category(tmp_path: Path) -> None:
    url = make_bank(tmp_path / "bank.db")
    out = run("--store", url, "snapshots", "rebuild", "nosuchthing", expect=2)
    assert "no aggregate type with a snapshot policy is defined for the category" in out
    assert "--import" in out
    out = run("--store", url, "snapshots", "rebuild", "x", "--import", "no.such.module", expect=2)
    assert "cannot import no.such.module" in out
    out = run("--store", url, "snapshots", "rebuild", "bank-account", expect=2)
    assert "must not contain the separator" in out


def test_delete_removes_a_categorys_snapshots(tmp_path: Path) -> None:
    url = make_bank(tmp_path / "bank.db")
    assert "Deleted 1 snapshot of bankaccount." in run(
        "--store", url, "snapshots", "delete", "bankaccount"
    )
    out = run("--store", url, "snapshots", "delete", "bankaccount", "--json")
    assert json.loads(out) == {"category": "bankaccount", "deleted": 0}


def test_the_snapshot_commands_show_examples_in_their_help() -> None:
    for command in (["snapshots"], ["snapshots", "rebuild"], ["snapshots", "delete"], ["demo"]):
        out = run(*command, "--help")
        assert "Example" in out
        assert all(len(line) <= 100 for line in out.splitlines())
