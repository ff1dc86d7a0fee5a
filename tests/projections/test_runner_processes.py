"""Runner processes, killed with SIGKILL, stopped with SIGTERM, racing each other for a lease.

Real OS processes (``eventkeep projections run``) and real writers. Every step waits for a state
(checkpoint positions, status rows, log lines), never for an amount of time: the machine may be
loaded, and a process may take seconds to start. Timeouts only bound the waits, generously, so
that a runner that is truly stuck fails the test instead of hanging it.
"""

from __future__ import annotations

import random
import re
import signal
import time
from functools import partial
from pathlib import Path

import pytest
from bank_check import (
    check_transfers,
    scratch_balances,
    scratch_daily,
    stored_balances,
    stored_daily,
)
from projection_harness import Processes, open_bank, wait_until
from projection_workers import ACCOUNTS

import eventkeep
from eventkeep import EventStore
from eventkeep.projections import projection_status

BANK = "eventkeep.examples.bank"
TARGETS = (
    f"{BANK}.readmodels:AccountBalances",
    f"{BANK}.readmodels:DailyTransactions",
    f"{BANK}.transfers:TransferProcessor",
)
NAMES = ("bank.account_balances", "bank.daily_transactions", "bank.transfers")
KILLS = 20


STUCK = 120.0
"""Upper bound of every wait below: only a runner that is truly stuck takes this long."""


def positions(store: EventStore) -> dict[str, int]:
    return {s.name: s.position for s in projection_status(store)}


def progress(store: EventStore) -> int:
    """How far the projections have got, all together: the sum of their checkpoints."""
    return sum(positions(store).values())


def progressed_to(store: EventStore, target: int) -> bool:
    return progress(store) >= target


def caught_up(store: EventStore) -> bool:
    """Every projection's checkpoint is at the head of the log, at one and the same moment.

    The head and the checkpoints cannot be read in one go, and reading them one after the other
    can be fooled: the transfer reactor appends events and moves its checkpoint in one
    transaction, so "head H; then the reactor commits H+1..H+2 and its checkpoint H; then every
    checkpoint reads H" would look caught up while events H+1..H+2 are unprocessed. So the
    checkpoints are read before and after the head: checkpoints only move forward (no rebuild
    or reset happens here), so a checkpoint that reads the same before and after had that
    value when the head was read. If all of them equal that head, every event there was then
    had been processed, and, with the writers stopped, nothing can follow (the reactor appends
    only while processing events, which are all done).
    """
    before = positions(store)
    head = store.head_position()
    after = positions(store)
    return (
        len(after) == len(NAMES)
        and before == after
        and all(position == head for position in after.values())
    )


def check_exactly_once(store: EventStore) -> None:
    assert stored_balances(store) == scratch_balances(store)
    assert stored_daily(store) == scratch_daily(store)
    assert check_transfers(store) > 0
    assert store.verify().ok


TAKEN = re.compile(r"projection (\S+): lease taken by \S+ \(fence (\d+)\) at position (\d+)")


def leases_taken(log: str) -> dict[str, tuple[int, int]]:
    """The leases a runner's log says it took: projection -> (fence, position)."""
    return {m[1]: (int(m[2]), int(m[3])) for m in TAKEN.finditer(log)}


def advanced(store: EventStore, since: dict[str, int]) -> bool:
    """True when every projection's checkpoint is beyond its position in ``since``."""
    now = positions(store)
    return len(now) == len(NAMES) and all(now[name] > since.get(name, 0) for name in NAMES)


@pytest.mark.slow
def test_a_runner_killed_20_times_while_writers_append_ends_exactly_once(
    sql_url: str, processes: Processes, tmp_path: Path
) -> None:
    rng = random.Random(20)
    stop_file = tmp_path / "stop-writers"
    with eventkeep.open_store(sql_url) as store:
        open_bank(store, ACCOUNTS)
        writers = [processes.worker("bank", sql_url, seed, stop_file) for seed in (1, 2)]
        reached = [positions(store)]
        for kill in range(KILLS):
            runner = processes.runner(sql_url, *TARGETS, ttl=5.0)
            # Kill only a working runner: one that has taken the leases and committed a batch
            # of every projection, the transfer reactor's included (progress measured in
            # events, however long the runner takes to start) ...
            last = reached[-1]
            wait_until(
                partial(advanced, store, last),
                timeout=STUCK,
                what=f"runner {kill} to move every projection beyond {last}",
            )
            # It took every lease over from the killed one (a new fence each time) exactly
            # where that one's last commit had left it.
            assert leases_taken(processes.log(runner)) == {
                name: (kill + 1, last.get(name, 0)) for name in NAMES
            }, processes.log(runner)
            # ... then at a random point of its work: after a random number of further events,
            # and a random pause on top, so that the kill can land in the middle of a batch.
            # (Neither decides the outcome; they only vary where the kill lands.)
            further = progress(store) + rng.randint(0, 300)
            wait_until(
                partial(progressed_to, store, further),
                timeout=STUCK,
                what=f"runner {kill} to go on to {further}",
            )
            time.sleep(rng.uniform(0, 0.1))
            assert runner.poll() is None, f"runner {kill} died: {processes.log(runner)}"
            processes.kill(runner)
            reached.append(positions(store))
        stop_file.touch()
        for writer in writers:
            assert processes.finish(writer) == 0, processes.log(writer)
        # A last runner, left alone, takes over likewise, catches up and finds nothing done
        # twice.
        runner = processes.runner(sql_url, *TARGETS)
        wait_until(lambda: caught_up(store), timeout=STUCK, what="the last runner to catch up")
        assert leases_taken(processes.log(runner)) == {
            name: (KILLS + 1, reached[-1][name]) for name in NAMES
        }, processes.log(runner)
        runner.send_signal(signal.SIGTERM)
        assert processes.finish(runner) == 0, processes.log(runner)
        check_exactly_once(store)


def owner_pids(store: EventStore) -> list[str | None]:
    """The process id in each projection's lease holder (None: nobody holds it)."""
    return [s.owner.split(":")[1] if s.owner else None for s in projection_status(store)]


@pytest.mark.slow
def test_two_runners_one_active_and_the_standby_takes_over_when_it_is_killed(
    sql_url: str, processes: Processes, tmp_path: Path
) -> None:
    stop_file = tmp_path / "stop-writers"
    with eventkeep.open_store(sql_url) as store:
        open_bank(store, ACCOUNTS)
        writer = processes.worker("bank", sql_url, 7, stop_file)
        first = processes.runner(sql_url, *TARGETS, ttl=30.0)
        wait_until(
            lambda: owner_pids(store) == [str(first.pid)] * len(NAMES),
            timeout=STUCK,
            what="the first runner to take every lease",
        )
        # The second runner has tried for every lease and found it held by the first: only then
        # does "it handles nothing" mean something (it may take seconds just to start).
        second = processes.runner(sql_url, *TARGETS, ttl=30.0, probe=True)
        wait_until(
            lambda: processes.log(second).count("standing by behind") == len(NAMES),
            timeout=STUCK,
            what="the second runner to stand by for every projection",
        )
        standing_by = [
            line for line in processes.log(second).splitlines() if "standing by behind" in line
        ]
        assert all(f":{first.pid}:" in line for line in standing_by), standing_by
        assert owner_pids(store) == [str(first.pid)] * len(NAMES)
        assert "lease taken" not in processes.log(second)  # it stands by, handling nothing
        processes.kill(first)
        # The dead holder is on this host: no need to wait 30 s for its lease to expire.
        wait_until(
            lambda: (
                owner_pids(store) == [str(second.pid)] * len(NAMES)
                # (it logs each take just after its commit: wait for the lines too)
                and processes.log(second).count("lease taken") >= len(NAMES)
            ),
            timeout=STUCK,
            what="the standby to take over",
        )
        assert processes.log(second).count("lease taken") == len(NAMES)
        # The standby now handles live events: every projection gets past events written after
        # the takeover, while the writer is still appending.
        head = store.head_position()
        wait_until(
            lambda: min(positions(store).values()) > head,
            timeout=STUCK,
            what=f"the standby to process events beyond {head}",
        )
        stop_file.touch()
        assert processes.finish(writer) == 0, processes.log(writer)
        wait_until(lambda: caught_up(store), timeout=STUCK, what="the standby to catch up")
        second.send_signal(signal.SIGTERM)
        assert processes.finish(second) == 0, processes.log(second)
        check_exactly_once(store)


@pytest.mark.slow
def test_sigterm_finishes_the_batch_saves_checkpoints_and_releases_leases(
    sql_url: str, processes: Processes
) -> None:
    with eventkeep.open_store(sql_url) as store:
        open_bank(store, ACCOUNTS)
        runner = processes.runner(sql_url, *TARGETS, ttl=30.0)
        wait_until(lambda: caught_up(store), timeout=STUCK, what="the runner to catch up")
        runner.send_signal(signal.SIGTERM)
        assert processes.finish(runner, timeout=30) == 0, processes.log(runner)
        statuses = projection_status(store)
        assert {s.state for s in statuses} == {"stopped"}
        assert all(s.owner is None for s in statuses)
        assert "stopped at position" in processes.log(runner)
        check_balances_only(store)


def check_balances_only(store: EventStore) -> None:
    assert stored_balances(store) == scratch_balances(store)
