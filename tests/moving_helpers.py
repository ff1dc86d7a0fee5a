"""Helpers of the tests of moving history (export, import, copy, backup) across backends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import eventkeep
from eventkeep import EventStore, NewEvent, RawEvent, StreamAppend

SRC = Path(__file__).resolve().parent.parent / "src"


def fill(store: EventStore, events: int, *, per_stream: int = 10) -> None:
    """``events`` events of varied shape (tags on some, metadata, non-ASCII text), streams of
    ``per_stream``, appended 1,000 per transaction."""
    made = 0
    while made < events:
        appends = []
        while made < events and len(appends) < 1000 // per_stream:
            stream = f"account-{made // per_stream}"
            count = min(per_stream, events - made)
            items = [
                NewEvent(
                    RawEvent("Deposited", {"amount": f"{n}.50", "note": "é\u2028ü", "n": n}),
                    tags=[f"account:{made // per_stream}"] if n % 3 == 0 else None,
                    metadata={"correlation_id": f"c-{made + n}"},
                )
                for n in range(count)
            ]
            appends.append(StreamAppend(stream, items))
            made += count
        store.append_many(appends)


def eventkeep_process(*args: str) -> subprocess.Popen[str]:
    """``python -m eventkeep ARGS`` in a new process, on this checkout's source."""
    env = {k: v for k, v in os.environ.items() if k != "EVENTKEEP_STORE"}
    env["PYTHONPATH"] = str(SRC)
    return subprocess.Popen(
        [sys.executable, "-m", "eventkeep", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_when(process: subprocess.Popen[str], store: EventStore, low: int, high: int) -> int:
    """SIGKILL ``process`` as soon as ``store`` holds at least ``low`` and fewer than ``high``
    events; returns how many it held when the process was gone. Fails if the process ended on
    its own first."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        held = store.head_position()
        if low <= held < high:
            os.kill(process.pid, signal.SIGKILL)
            process.communicate(timeout=30)
            return store.head_position()
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the process ended before it was killed: {out} {err}")
        time.sleep(0.002)
    process.kill()
    raise AssertionError("the destination never held part of the events")


def same_history(a: EventStore, b: EventStore) -> None:
    """Every event of ``a`` is in ``b`` with every field equal (positions too), and no more."""
    left, right = list(a.export()), list(b.export())
    assert len(left) == len(right)
    assert left == right
    assert [e.event for e in a.read_all()] == [e.event for e in b.read_all()]


def open_store(url: str) -> EventStore:
    return eventkeep.open_store(url)
