"""The CLI as a user runs it: a real process, ``python -m eventkeep``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _run(
    *args: str, cwd: Path, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m eventkeep ARGS`` in ``cwd``, with EVENTKEEP_STORE only if ``env`` sets it."""
    base = {k: v for k, v in os.environ.items() if k != "EVENTKEEP_STORE"}
    return subprocess.run(
        [sys.executable, "-m", "eventkeep", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, "COLUMNS": "80", **(env or {})},
        check=False,
    )


def test_a_round_trip_through_real_processes_with_the_default_store(tmp_path: Path) -> None:
    appended = _run(
        "append",
        "acct",
        "Deposited",
        "-",
        "-e",
        "no_stream",
        cwd=tmp_path,
        input='{"amount": "10.00"}',
    )
    assert appended.returncode == 0, appended.stderr
    assert appended.stdout.startswith("Appended Deposited to acct at version 1 (position 1,")
    assert (tmp_path / "eventkeep.db").exists()
    read = _run("read", "acct", "--json", cwd=tmp_path)
    assert read.returncode == 0, read.stderr
    [event] = json.loads(read.stdout)
    assert (event["stream_id"], event["version"], event["data"]) == (
        "acct",
        1,
        {"amount": "10.00"},
    )
    table = _run("read", "acct", cwd=tmp_path)
    assert table.returncode == 0
    assert "Deposited" in table.stdout
    assert all(len(line) <= 80 for line in table.stdout.splitlines())


def test_errors_in_a_real_process_are_one_line_with_exit_codes(tmp_path: Path) -> None:
    store = {"EVENTKEEP_STORE": f"sqlite:///{tmp_path / 'p.db'}"}
    assert _run("append", "s", "A", "-e", "no_stream", cwd=tmp_path, env=store).returncode == 0
    conflict = _run("append", "s", "B", "-e", "no_stream", cwd=tmp_path, env=store)
    assert conflict.returncode == 3
    assert conflict.stderr == "Error: stream 's': expected version NO_STREAM, actual version 1\n"
    bad = _run("append", "s", "B", "{nope", cwd=tmp_path, env=store)
    assert bad.returncode == 2
    assert bad.stderr.startswith("Error: DATA_JSON is not valid JSON")
    verify = _run("verify", cwd=tmp_path, env=store)
    assert verify.returncode == 0
    assert verify.stdout.startswith("All clear: 1 event in 1 stream checked")
    assert "Usage: eventkeep " in _run("--help", cwd=tmp_path).stdout


def test_importing_eventkeep_does_not_import_click_or_rich(tmp_path: Path) -> None:
    code = (
        "import sys, eventkeep\n"
        "eventkeep.open_store('memory://').close()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'rich'))\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""


def test_verify_shows_a_progress_bar_on_a_terminal_and_none_when_piped(tmp_path: Path) -> None:
    import pty
    import select

    import eventkeep

    url = f"sqlite:///{tmp_path / 'big.db'}"
    with eventkeep.open_store(url) as store:
        store.append("big", [eventkeep.RawEvent("Noted", {"n": n}) for n in range(5000)])
    env = {**os.environ, "COLUMNS": "80", "EVENTKEEP_STORE": url}
    # On a terminal (stderr a pty): the bar, then the verdict.
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventkeep", "verify"],
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=tmp_path,
    )
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    text = seen.decode(errors="replace")
    assert "verifying the hash chains" in text
    assert "5000/5000" in text
    assert "5000 events" in text or "5,000 events" in text
    # Piped: the verdict only, no bar.
    piped = _run("verify", cwd=tmp_path, env={"EVENTKEEP_STORE": url})
    assert piped.returncode == 0, piped.stderr
    assert "verifying the hash chains" not in piped.stdout + piped.stderr
