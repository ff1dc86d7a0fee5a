"""``eventkeep demo``: the bank example end to end, readable in an 80-column terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import eventkeep
from eventkeep.cli import main
from eventkeep.examples.bank import BankAccount

SECTIONS = [
    "1. Accounts opened",
    "2. Deposits, withdrawals and a transfer",
    "3. An overdraft, refused by the invariant",
    "4. A concurrent modification, detected and retried",
    "5. Temporal queries",
    "6. Snapshots kick in",
    "7. Events from an older release, upcast on read",
    "8. The same streams, through the decider",
    "9. verify",
    "10. Read models and a transfer reactor",
]


def check_output(out: str, path: Path) -> None:
    for section in SECTIONS:
        assert section in out, section
    assert "bankaccount-alice" in out
    assert "refused: insufficient funds in bob: balance 70.00, cannot withdraw 500.00" in out
    assert "bankaccount-bob is still at version 3" in out
    assert "ConcurrencyError" in out
    assert "expected version 4, actual version 5" in out
    assert "conflict: the stream moved to version 6; reload" in out
    assert "saved as version 7" in out
    assert "as_of=<" in out
    assert "│ 4       │ 50.00" in out
    assert "version 121" in out
    assert "0 events" in out
    assert "bank.Deposited v1" in out
    assert "Deposited(amount=25.00, currency='EUR')" in out
    assert "AccountOpened(owner='Dave', currency='EUR')" in out
    assert "verify passed: 133 events in 4 streams checked" in out
    assert "transfer-t1 │ bank.TransferCompleted" in out
    assert "transfer-t2 │ bank.TransferRejected" in out
    assert "│ alice   │ Alice │ 40.00   │ 8      │" in out
    assert str(path) in out
    assert "Traceback" not in out
    too_wide = [line for line in out.splitlines() if len(line) > 80 and str(path) not in line]
    assert not too_wide, too_wide


def check_store(path: Path) -> None:
    with eventkeep.open_store(f"sqlite:///{path}") as store:
        assert store.verify().ok
        accounts = eventkeep.Repository(store, BankAccount)
        assert accounts.ids() == ["alice", "bob", "carol", "dave"]
        assert [str(accounts.load(i).balance) for i in accounts.ids()] == [
            "40.00",
            "80.00",
            "120.00",
            "0",
        ]


def test_the_demo_runs_and_shows_every_step(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    runner = CliRunner(env={"COLUMNS": "80", "EVENTKEEP_STORE": None})
    result = runner.invoke(main, ["demo", "--path", str(path)])
    assert result.exit_code == 0, (result.output, result.exception)
    check_output(result.output, path)
    check_store(path)


def test_the_demo_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "taken.db"
    path.write_bytes(b"")
    result = CliRunner().invoke(main, ["demo", "--path", str(path)])
    assert result.exit_code == 1
    assert "already exists; the demo needs a fresh file" in result.output
    missing_dir = tmp_path / "nowhere" / "demo.db"
    result = CliRunner().invoke(main, ["demo", "--path", str(missing_dir)])
    assert result.exit_code == 2
    assert "is not a directory" in result.output


def test_the_demo_runs_as_a_real_process_in_80_columns(tmp_path: Path) -> None:
    path = tmp_path / "process.db"
    env = {**os.environ, "COLUMNS": "80", "PYTHONWARNINGS": "error"}
    env.pop("EVENTKEEP_STORE", None)
    done = subprocess.run(
        [sys.executable, "-m", "eventkeep", "demo", "--path", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    check_output(done.stdout, path)
    check_store(path)


def test_without_a_path_the_demo_uses_a_new_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    result = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    created = list(tmp_path.glob("eventkeep-demo-*/bank.db"))
    assert len(created) == 1
    assert str(created[0]) in result.output
