"""``expected_version=ANY`` always appends, however many processes write to the same stream.

Before the one append planner, 4 processes x 150 one-event ANY appends to one stream lost 91 of
600 appends with an IntegrityError ("duplicate key ... events_pkey": the error class of
tampering) once their optimistic retries ran out. Now an append that keeps losing the race takes
the sequencer's lock before it reads, and cannot lose again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pg_harness import wait_until

import eventkeep
from pg_fixtures import Target

pytestmark = pytest.mark.slow

PROCESSES = 4
APPENDS = 150

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import eventkeep
    from eventkeep import RawEvent

    url, out, name, appends = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    errors = []
    done = 0
    with eventkeep.open_store(url) as store:
        out.with_suffix(".ready").touch()
        go = out.parent / "go"
        deadline = time.monotonic() + 150
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        for n in range(appends):
            try:
                store.append("hot", [RawEvent("pg.Hot", {"writer": name, "n": n})])
                done += 1
            except eventkeep.EventkeepError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
    out.write_text(json.dumps({"done": done, "errors": errors[:5], "failed": len(errors)}))
    """
)


def test_any_appends_from_four_processes_to_one_stream_all_go_through(
    target: Target, tmp_path: Path
) -> None:
    procs = []
    for n in range(PROCESSES):
        out = tmp_path / f"w{n}.json"
        procs.append(
            (
                out,
                subprocess.Popen(
                    [sys.executable, "-c", WORKER, target.url, str(out), f"w{n}", str(APPENDS)],
                    stderr=subprocess.PIPE,
                ),
            )
        )
    try:
        wait_until(
            lambda: all(out.with_suffix(".ready").exists() for out, _ in procs),
            "the writers to open their stores",
        )
        (tmp_path / "go").touch()
        results = []
        for out, proc in procs:
            _, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
            results.append(json.loads(out.read_text()))
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [r["errors"] for r in results] == [[]] * PROCESSES
    assert sum(r["done"] for r in results) == PROCESSES * APPENDS
    with eventkeep.open_store(target.url) as store:
        events = list(store.read_stream("hot"))
        assert [e.version for e in events] == list(range(1, PROCESSES * APPENDS + 1))
        positions = [e.position for e in events]
        assert positions == sorted(positions)
        assert store.verify().ok
