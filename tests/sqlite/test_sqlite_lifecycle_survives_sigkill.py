"""A process SIGKILLed in the middle of a removal (a real OS process): after the archive file is
written and before any row changes, or after every row is deleted and the operation closed but
before the commit. Either way the database holds every event, no operation, and verifies; the
archive left behind names no operation; the same removal then runs to the end."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import eventkeep
from eventkeep import RawEvent

SRC = Path(eventkeep.__file__).resolve().parent.parent

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import eventkeep
    from eventkeep.backends.sqlite import lifecycle
    from eventkeep.store import lifecycle_store

    point = sys.argv[2]

    def die(original):
        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapper

    if point == "archive-written":
        lifecycle_store.write_archive = die(lifecycle_store.write_archive)
    else:
        lifecycle.save_meta = die(lifecycle.save_meta)
    store = eventkeep.open_store(f"sqlite:///{sys.argv[1]}")
    store.delete_stream("a", hard=True, by="crash test")
    print("not killed")
    """
)


@pytest.mark.parametrize("point", ["archive-written", "rows-deleted"])
def test_a_removal_killed_before_its_commit_leaves_the_store_whole(
    tmp_path: Path, point: str
) -> None:
    db = tmp_path / "crash.db"
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        for n in range(3):
            store.append("a", [RawEvent("Noted", {"n": n})])
            store.append("b", [RawEvent("Noted", {"n": n})])
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), point],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    archives = tmp_path / "crash.db-archives"
    assert len(list(archives.glob("*.jsonl.gz"))) == 1  # written, then the process died
    with eventkeep.open_store(f"sqlite:///{db}") as store:
        assert len(list(store.read_all())) == 6
        assert store.operations() == []
        assert store.deletion("a") is None
        assert store.verify().ok
        op = store.delete_stream("a", hard=True)
        assert op.events == 3
        assert [e.stream_id for e in store.read_all()] == ["b"] * 3
        assert store.verify().ok
