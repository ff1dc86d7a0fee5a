"""A process SIGKILLed in the middle of a removal on PostgreSQL (a real OS process), before its
commit: the server rolls the transaction back; every event is there, no operation is logged,
verify passes, and the same removal then runs to the end."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import eventkeep
from eventkeep import RawEvent
from pg_fixtures import Target

SRC = Path(eventkeep.__file__).resolve().parent.parent

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import eventkeep
    from eventkeep.backends.postgres import lifecycle
    from eventkeep.store import lifecycle_store

    def die(original):
        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapper

    if sys.argv[2] == "archive-written":
        lifecycle_store.write_archive = die(lifecycle_store.write_archive)
    else:
        lifecycle.save_meta = die(lifecycle.save_meta)
    store = eventkeep.open_store(sys.argv[1])
    store.delete_stream("a", hard=True, by="crash test")
    print("not killed")
    """
)


@pytest.mark.parametrize("point", ["archive-written", "rows-deleted"])
def test_a_removal_killed_before_its_commit_leaves_the_store_whole(
    tmp_path: Path, target: Target, point: str
) -> None:
    url = f"{target.url}&archive_dir={tmp_path / 'archives'}"
    with eventkeep.open_store(url) as store:
        for n in range(3):
            store.append("a", [RawEvent("Noted", {"n": n})])
            store.append("b", [RawEvent("Noted", {"n": n})])
    child = subprocess.run(
        [sys.executable, "-c", CHILD, url, point],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    with eventkeep.open_store(url) as store:
        assert len(list(store.read_all())) == 6
        assert store.operations() == []
        assert store.verify().ok
        assert store.delete_stream("a", hard=True).events == 3
        assert [e.stream_id for e in store.read_all()] == ["b"] * 3
        assert store.verify().ok
