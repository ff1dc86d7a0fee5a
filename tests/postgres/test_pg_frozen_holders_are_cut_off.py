"""A frozen process (SIGSTOP) that holds the sequencer or a projection record inside a store
transaction does not stop the store: the server ends its session once it has sat idle in the
transaction for ``idle_in_transaction_timeout``, its locks go, and everyone else goes on.
Before, every append waited for it (then failed with BackendUnavailableError) and a standby
blocked on the record forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pg_harness import wait_until

import eventkeep
from eventkeep import RawEvent
from pg_fixtures import Target

pytestmark = pytest.mark.slow

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import eventkeep
    from eventkeep import RawEvent

    url, what, ready = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    with eventkeep.open_store(url, idle_in_transaction_timeout=1) as store:
        with store.transaction() as tx:
            if what == "sequencer":
                tx.append("frozen", [RawEvent("pg.Frozen", {})])
            else:
                assert tx.record("bank.balances") is not None
            ready.touch()
            while True:  # stopped here by the test
                time.sleep(0.05)
    """
)


@pytest.fixture
def holder(target: Target, tmp_path: Path) -> Iterator[Callable[[str], object]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(what: str) -> subprocess.Popen[bytes]:
        ready = tmp_path / f"{what}.ready"
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, target.url, what, str(ready)],
            stderr=subprocess.PIPE,
        )
        procs.append(proc)
        wait_until(lambda: ready.exists() or proc.poll() is not None, "the holder to be ready")
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGSTOP)
        return proc

    yield start
    for proc in procs:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        if proc.stderr is not None:
            proc.stderr.close()


def test_a_frozen_transaction_holding_the_sequencer_is_cut_off_and_appends_go_on(
    target: Target, holder: Callable[[str], object]
) -> None:
    holder("sequencer")
    # A generous lock_timeout: the append must get through because the holder is cut off,
    # not because this side gave up waiting.
    with eventkeep.open_store(target.url, lock_timeout=600) as store:
        result = store.append("live", [RawEvent("pg.Live", {})])
        assert result.position == 1
        assert store.stream_version("frozen") == 0  # its transaction was rolled back
        assert [e.stream_id for e in store.read_all()] == ["live"]


def test_a_frozen_transaction_holding_a_projection_record_is_cut_off_and_a_standby_takes_it(
    target: Target, holder: Callable[[str], object]
) -> None:
    with eventkeep.open_store(target.url, lock_timeout=600) as store:
        with store.transaction() as tx:
            tx.save_record("bank.balances", b"active")
        holder("record")
        with store.transaction() as tx:  # waits for the frozen holder, until it is cut off
            assert tx.record("bank.balances") == b"active"
            tx.save_record("bank.balances", b"standby")
        with store.transaction() as tx:
            assert tx.record("bank.balances") == b"standby"
