"""``eventkeep anchor``, ``eventkeep anchor-key`` and ``eventkeep verify --anchor``."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from eventkeep.cli import main

Invoke = Callable[..., Result]
SECRET = "cli tests anchor secret, at least 32 bytes"


def _fill(cli: Invoke) -> None:
    for n in range(1, 4):
        cli("append", "account-1", "Deposited", f'{{"amount": "{n}.00"}}')
        cli("append", "account-2", "Deposited", f'{{"amount": "{n}.00"}}')


def _delete_stream(db_url: str, stream_id: str) -> None:
    """Delete a stream and its head behind the triggers' back (and put the triggers back)."""
    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        saved = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        triggers = saved.fetchall()
        conn.execute("BEGIN IMMEDIATE")
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute("DELETE FROM events WHERE stream_id = ?", (stream_id,))
        conn.execute("DELETE FROM streams WHERE stream_id = ?", (stream_id,))
        for _, statement in triggers:
            conn.execute(statement)
        conn.execute("COMMIT")
    finally:
        conn.close()


@pytest.fixture
def keys(cli: Invoke, tmp_path: Path) -> tuple[Path, Path]:
    private = tmp_path / "anchor.pem"
    result = cli("anchor-key", str(private))
    assert "key id" in result.stdout
    public = tmp_path / "anchor.pem.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    return private, public


def test_an_ed25519_anchor_verifies_with_the_public_key(
    cli: Invoke, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    _fill(cli)
    anchor = tmp_path / "a.json"
    made = cli("anchor", "--key-file", str(private), "--output", str(anchor))
    assert "Anchored 6 events in 2 streams up to position 6" in made.stdout
    document = json.loads(anchor.read_text())
    assert (document["format"], document["position"], document["algorithm"]) == (1, 6, "ed25519")
    cli("append", "account-3", "Opened")  # appends after the anchor are fine
    result = cli("verify", "--anchor", str(anchor), "--key-file", str(public))
    assert result.stdout.startswith("All clear: 7 events in 3 streams checked")
    assert "- anchor at position 6 (6 events, 2 streams; ed25519 key" in " ".join(
        result.stdout.split()
    )


def test_an_hmac_anchor_from_the_environment_printed_to_stdout(
    runner: CliRunner, db_url: str, tmp_path: Path
) -> None:
    env = {"EVENTKEEP_ANCHOR_KEY": SECRET}
    assert runner.invoke(main, ["--store", db_url, "append", "s", "A"]).exit_code == 0
    made = runner.invoke(main, ["--store", db_url, "anchor"], env=env)
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["algorithm"] == "hmac-sha256"
    anchor = tmp_path / "a.json"
    anchor.write_text(made.stdout)
    checked = runner.invoke(
        main, ["--store", db_url, "verify", "--anchor", str(anchor), "--json"], env=env
    )
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["ok"] is True


def test_a_deleted_stream_passes_verify_but_not_verify_with_the_anchor(
    cli: Invoke, db_url: str, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    _fill(cli)
    anchor = tmp_path / "a.json"
    cli("anchor", "--key-file", str(private), "-o", str(anchor))
    _delete_stream(db_url, "account-1")
    cli("verify")
    result = cli("verify", "--anchor", str(anchor), "--key-file", str(public), expect=1)
    assert "Problems:" in result.stdout
    assert "events were deleted or added" in " ".join(result.stdout.split())
    assert result.stderr == (
        "Error: verify found 2 other problems (3 events in 1 stream checked)\n"
    )


def test_an_anchor_extends_a_previous_one(
    cli: Invoke, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    _fill(cli)
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    cli("anchor", "--key-file", str(private), "-o", str(first))
    cli("append", "account-1", "Deposited", '{"amount": "9.00"}')
    cli("anchor", "--key-file", str(private), "--previous", str(first), "-o", str(second))
    assert json.loads(second.read_text())["extends"]["position"] == 6
    key = ("--key-file", str(public))
    cli("verify", "--anchor", str(second), "--trusted", str(first), *key)
    cli("verify", "--anchor", str(second), *key)


def _error(result: Result) -> str:
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    return result.stderr


def test_a_wrong_key_is_a_one_line_error_with_exit_2(
    cli: Invoke, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, _ = keys
    _fill(cli)
    anchor = tmp_path / "a.json"
    cli("anchor", "--key-file", str(private), "-o", str(anchor))
    other = tmp_path / "other.pem"
    cli("anchor-key", str(other))
    wrong = cli("verify", "--anchor", str(anchor), "--key-file", f"{other}.pub", expect=2)
    assert "not with the given ed25519 key" in _error(wrong)
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    hmac = cli("verify", "--anchor", str(anchor), "--key-file", str(secret), expect=2)
    assert "not with the given hmac-sha256 key" in _error(hmac)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "not an eventkeep anchor"),
        ("{not json", "not an eventkeep anchor"),
        ('{"format": 1, "position": 3}', "not an eventkeep anchor"),
    ],
    ids=["empty", "not-json", "missing-fields"],
)
def test_a_corrupt_anchor_file_is_a_one_line_error_with_exit_2(
    cli: Invoke, keys: tuple[Path, Path], tmp_path: Path, content: str, message: str
) -> None:
    _, public = keys
    _fill(cli)
    anchor = tmp_path / "a.json"
    anchor.write_text(content)
    result = cli("verify", "--anchor", str(anchor), "--key-file", str(public), expect=2)
    assert message in _error(result)


def test_an_edited_anchor_file_has_a_bad_signature(
    cli: Invoke, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    _fill(cli)
    anchor = tmp_path / "a.json"
    cli("anchor", "--key-file", str(private), "-o", str(anchor))
    document = json.loads(anchor.read_text())
    document["events"] = 5
    anchor.write_text(json.dumps(document))
    result = cli("verify", "--anchor", str(anchor), "--key-file", str(public), expect=2)
    assert "bad signature" in _error(result)


def test_usage_errors_of_anchor_exit_2(
    runner: CliRunner, cli: Invoke, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    private, public = keys
    _fill(cli)
    anchor = tmp_path / "a.json"
    cli("anchor", "--key-file", str(private), "-o", str(anchor))
    again = cli("anchor", "--key-file", str(private), "-o", str(anchor), expect=2)
    assert "exists already" in _error(again)
    cli("anchor", "--key-file", str(private), "-o", str(anchor), "--force")
    signing = cli("anchor", "--key-file", str(public), expect=2)
    assert "public key" in _error(signing)
    missing = cli("anchor", "--key-file", str(tmp_path / "nope.pem"), expect=2)
    assert "cannot read the anchor key" in _error(missing)
    short = tmp_path / "short"
    short.write_text("too short")
    assert "at least 32 bytes" in _error(cli("anchor", "--key-file", str(short), expect=2))
    no_key = cli("verify", "--anchor", str(anchor), expect=2)
    assert "EVENTKEEP_ANCHOR_KEY" in _error(no_key)
    no_file = cli("verify", "--anchor", str(tmp_path / "nope.json"), expect=2)
    assert "cannot read the anchor" in _error(no_file)
    trusted_alone = cli("verify", "--trusted", str(anchor), expect=2)
    assert "--trusted needs --anchor" in _error(trusted_alone)


def test_anchor_and_a_wrong_key_in_real_processes(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("EVENTKEEP_STORE",)}
    env = {**base, "EVENTKEEP_STORE": f"sqlite:///{tmp_path / 'p.db'}", "COLUMNS": "80"}

    def run(*args: str, key: str = SECRET) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "eventkeep", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, "EVENTKEEP_ANCHOR_KEY": key},
            check=False,
        )

    assert run("append", "s", "A").returncode == 0
    made = run("anchor", "-o", "a.json")
    assert made.returncode == 0, made.stderr
    assert run("verify", "--anchor", "a.json").returncode == 0
    wrong = run("verify", "--anchor", "a.json", key=SECRET.upper())
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("Error: the anchor at position 1 was signed with hmac-sha256")
    assert wrong.stderr.count("\n") == 1
    assert "Traceback" not in wrong.stderr
