"""An async subscription wakes on an append made by another process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

import eventkeep.aio
import pg_fixtures
from eventkeep.aio import AsyncSubscription

SHARED = ["sqlite", *(["postgres"] if pg_fixtures.wanted() else [])]
"""The backends another process can append to."""

SRC = str(Path(__file__).resolve().parents[2] / "src")
APPEND = """
import sys
import eventkeep
store = eventkeep.open_store(sys.argv[1])
store.append("from-another-process", [eventkeep.RawEvent("test.Appended", {"n": 1})])
store.close()
"""


async def append_in_another_process(url: str) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", APPEND, url, env=env, stderr=subprocess.PIPE
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()


@pytest.mark.parametrize("backend", SHARED)
def test_a_waiting_subscription_gets_the_event_another_process_appends(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'shared.db'}"
        if backend == "sqlite"
        else pg_fixtures.fresh_store_url(request)
    )

    async def main() -> None:
        options = {"poll_interval": 600.0} if backend == "postgres" else {}
        async with await eventkeep.aio.open_store(url, **options) as store:
            subscription = AsyncSubscription(store, after="end")
            batches = subscription.batches(idle_timeout=120)
            waiting = asyncio.create_task(anext(batches))
            await asyncio.sleep(0.2)  # the subscription is idle, waiting
            assert not waiting.done()
            await append_in_another_process(url)
            batch = await asyncio.wait_for(waiting, timeout=120)
            assert [e.stream_id for e in batch.events] == ["from-another-process"]
            if backend == "postgres":
                # The other process's append was announced to the waiting tasks: the NOTIFY
                # the store's listener heard went through its hook.
                assert store._wakes > 0
            await batches.aclose()

    asyncio.run(main())
