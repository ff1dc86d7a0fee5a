"""``eventkeep demo``: the bank example end to end, readable in an 80-column terminal."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import eventkeep
from eventkeep.cli import main
from eventkeep.examples.bank import BankAccount
from pg_fixtures import PgServer, new_schema_name, with_schema

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


def check_output(out: str, path: Path | str) -> None:
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


def check_store(path: Path | str) -> None:
    url = path if isinstance(path, str) else f"sqlite:///{path}"
    with eventkeep.open_store(url) as store:
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


@pytest.fixture
def own_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary folders (``tempfile.mkdtemp``) are made in this test's own, empty directory."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile caches the directory it found
    return folder


def explore_commands(out: str) -> list[list[str]]:
    """The ``eventkeep ...`` commands printed after "Explore it:", as argument lists."""
    tail = out.partition("Explore it:\n")[2]
    commands = [line.strip() for line in tail.splitlines() if line.startswith("  eventkeep ")]
    assert len(commands) == 4, out
    return [shlex.split(command) for command in commands]


def run_printed_commands(out: str, cwd: Path) -> None:
    """Run each printed command as the user would: a new process, as printed."""
    env = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "error"}
    env.pop("EVENTKEEP_STORE", None)
    commands = explore_commands(out)
    assert [args[3:] for args in commands] == [
        ["log"],
        ["read", "bankaccount-alice"],
        ["projections", "status"],
        ["snapshots", "rebuild", "bankaccount", "--import", "eventkeep.examples.bank"],
    ]
    outputs = []
    for args in commands:
        assert args[:2] == ["eventkeep", "--store"]
        done = subprocess.run(
            [sys.executable, "-m", "eventkeep", *args[1:]],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=cwd,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        outputs.append(done.stdout)
    log, alice, status, rebuilt = outputs
    assert "bankaccount-carol" in log
    assert "transfer-t2" in log
    assert "bankaccount-alice" in alice
    assert "Withdrawn" in alice
    assert "bank.account_balances" in status
    assert rebuilt.startswith("Rebuilt the snapshots of bankaccount: 4 streams read, 1 snapshot")


def test_without_a_path_the_demo_removes_its_temporary_folder(own_tmpdir: Path) -> None:
    result = CliRunner(env={"COLUMNS": "80", "EVENTKEEP_STORE": None}).invoke(main, ["demo"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "store: sqlite:///" + str(own_tmpdir) in result.output
    match = re.search(r"temporary folder (\S+) has been removed", result.output)
    assert match, result.output
    assert Path(match.group(1)).parent == own_tmpdir
    assert list(own_tmpdir.iterdir()) == []
    assert "Explore it" not in result.output  # nothing to explore: no command is printed
    assert "eventkeep demo --keep" in result.output
    check_output(result.output, match.group(1))


def test_with_keep_the_demo_keeps_its_folder_and_the_printed_commands_work(
    own_tmpdir: Path, tmp_path: Path
) -> None:
    result = CliRunner(env={"COLUMNS": "80", "EVENTKEEP_STORE": None}).invoke(
        main, ["demo", "--keep"]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    (folder,) = own_tmpdir.iterdir()
    path = folder / "bank.db"
    check_output(result.output, folder)
    assert f"The store is kept in {path}. Explore it:" in result.output
    assert f"Remove it when you are done: rm -r {folder}" in result.output
    check_store(path)
    run_printed_commands(result.output, cwd=tmp_path)
    check_store(path)


def test_with_a_path_the_file_is_kept_and_the_printed_commands_work(tmp_path: Path) -> None:
    path = tmp_path / "kept.db"
    result = CliRunner(env={"COLUMNS": "80", "EVENTKEEP_STORE": None}).invoke(
        main, ["demo", "--path", str(path)]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert "rm -r" not in result.output
    run_printed_commands(result.output, cwd=tmp_path)
    check_store(path)


def test_an_explicit_sqlite_store_is_not_used(tmp_path: Path, own_tmpdir: Path) -> None:
    mine = tmp_path / "mine.db"
    result = CliRunner(env={"COLUMNS": "80", "EVENTKEEP_STORE": None}).invoke(
        main, ["--store", f"sqlite:///{mine}", "demo"]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.output.startswith(f"(The demo does not use sqlite:///{mine}")
    assert not mine.exists()
    assert list(own_tmpdir.iterdir()) == []


# -- PostgreSQL ---------------------------------------------------------------------------------


def schema_exists(server: PgServer, schema: str) -> bool:
    with server.admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
    return bool(row and row[0])


def demo_schema(out: str) -> str:
    match = re.search(r"(eventkeep_demo_[0-9a-f]{12})", out)
    assert match, out
    return match.group(1)


def test_the_demo_runs_on_postgresql_in_a_schema_of_its_own_and_drops_it(
    pg_server: PgServer, request: pytest.FixtureRequest
) -> None:
    # The user's store, with an event of theirs: the demo must leave it alone.
    schema = new_schema_name()
    request.addfinalizer(lambda: pg_server.drop_schema(schema))
    users = with_schema(pg_server.url, schema)
    with eventkeep.open_store(users) as store:
        store.append("account-1", [eventkeep.RawEvent("Opened", {"owner": "Ada"})])
    result = CliRunner(env={"COLUMNS": "80", "EVENTKEEP_STORE": users}).invoke(main, ["demo"])
    assert result.exit_code == 0, (result.output, result.exception)
    demo = demo_schema(result.output)
    request.addfinalizer(lambda: pg_server.drop_schema(demo))
    assert "event-sourced, on PostgreSQL" in result.output
    check_output(result.output, demo)
    assert f"The demo's schema {demo} has been dropped" in result.output
    assert "Explore it" not in result.output
    assert not schema_exists(pg_server, demo)
    with eventkeep.open_store(users) as store:
        assert [e.type for e in store.read_all()] == ["Opened"]
        assert store.verify().ok


def test_with_keep_the_postgresql_schema_is_kept_and_the_printed_commands_work(
    pg_server: PgServer, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    result = CliRunner(env={"COLUMNS": "80", "EVENTKEEP_STORE": None}).invoke(
        main, ["--store", pg_server.url, "demo", "--keep"]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    demo = demo_schema(result.output)
    request.addfinalizer(lambda: pg_server.drop_schema(demo))
    check_output(result.output, demo)
    assert schema_exists(pg_server, demo)
    assert f"The store is kept in the schema {demo}. Explore it:" in result.output
    assert f"DROP SCHEMA {demo} CASCADE;" in result.output
    check_store(with_schema(pg_server.url, demo))
    run_printed_commands(result.output, cwd=tmp_path)


def test_the_demo_on_postgresql_refuses_a_path(pg_server: PgServer, tmp_path: Path) -> None:
    result = CliRunner(env={"EVENTKEEP_STORE": None}).invoke(
        main, ["--store", pg_server.url, "demo", "--path", str(tmp_path / "x.db")]
    )
    assert result.exit_code == 2, result.output
    assert "--path names a SQLite file" in result.output
    assert not (tmp_path / "x.db").exists()
