"""Runner processes, killed with SIGKILL, stopped with SIGTERM, racing each other for a lease.

Real OS processes (``eventkeep projections run``) and real writers; every wait is bounded.
"""

from __future__ import annotations

import random
import signal
import time
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


def positions(store: EventStore) -> dict[str, int]:
    return {s.name: s.position for s in projection_status(store)}


def caught_up(store: EventStore) -> bool:
    head = store.head_position()
    found = positions(store)
    return len(found) == len(NAMES) and all(p == head for p in found.values())


def check_exactly_once(store: EventStore) -> None:
    assert stored_balances(store) == scratch_balances(store)
    assert stored_daily(store) == scratch_daily(store)
    assert check_transfers(store) > 0
    assert store.verify().ok


@pytest.mark.slow
def test_a_runner_killed_20_times_while_writers_append_ends_exactly_once(
    sql_url: str, processes: Processes, tmp_path: Path
) -> None:
    rng = random.Random(20)
    stop_file = tmp_path / "stop-writers"
    with eventkeep.open_store(sql_url) as store:
        open_bank(store, ACCOUNTS)
        writers = [processes.worker("bank", sql_url, seed, stop_file) for seed in (1, 2)]
        progress = []
        for _ in range(KILLS):
            runner = processes.runner(sql_url, *TARGETS, ttl=5.0)
            time.sleep(rng.uniform(0.25, 0.7))
            processes.kill(runner)
            progress.append(sum(positions(store).values()))
        stop_file.touch()
        for writer in writers:
            assert processes.finish(writer) == 0, processes.log(writer)
        # Killed runners made progress between kills (the kills hit working runners) ...
        assert len(set(progress)) > KILLS // 2, progress
        # ... and a last one, left alone, catches up and finds nothing done twice.
        runner = processes.runner(sql_url, *TARGETS)
        wait_until(lambda: caught_up(store), timeout=60, what="the last runner to catch up")
        runner.send_signal(signal.SIGTERM)
        assert processes.finish(runner) == 0, processes.log(runner)
        check_exactly_once(store)


@pytest.mark.slow
def test_two_runners_one_active_and_the_standby_takes_over_when_it_is_killed(
    sql_url: str, processes: Processes, tmp_path: Path
) -> None:
    stop_file = tmp_path / "stop-writers"
    with eventkeep.open_store(sql_url) as store:
        open_bank(store, ACCOUNTS)
        writer = processes.worker("bank", sql_url, 7, stop_file)
        first = processes.runner(sql_url, *TARGETS, ttl=30.0)
        wait_until(lambda: len(positions(store)) == 3, what="the first runner to start")
        second = processes.runner(sql_url, *TARGETS, ttl=30.0)
        time.sleep(1.0)
        owners = {s.owner for s in projection_status(store)}
        assert len(owners) == 1
        [owner] = owners
        assert owner is not None
        assert owner.split(":")[1] == str(first.pid)
        assert "lease taken" not in processes.log(second)  # it stands by, handling nothing
        processes.kill(first)
        # The dead holder is on this host: no need to wait 30 s for its lease to expire.
        wait_until(
            lambda: (
                {s.owner.split(":")[1] for s in projection_status(store) if s.owner}
                == {str(second.pid)}
            ),
            what="the standby to take over",
        )
        time.sleep(0.5)
        stop_file.touch()
        assert processes.finish(writer) == 0, processes.log(writer)
        wait_until(lambda: caught_up(store), timeout=60, what="the standby to catch up")
        second.send_signal(signal.SIGTERM)
        assert processes.finish(second) == 0
        check_exactly_once(store)


@pytest.mark.slow
def test_sigterm_finishes_the_batch_saves_checkpoints_and_releases_leases(
    sql_url: str, processes: Processes
) -> None:
    with eventkeep.open_store(sql_url) as store:
        open_bank(store, ACCOUNTS)
        runner = processes.runner(sql_url, *TARGETS, ttl=30.0)
        wait_until(lambda: caught_up(store), what="the runner to catch up")
        runner.send_signal(signal.SIGTERM)
        assert processes.finish(runner, timeout=30) == 0, processes.log(runner)
        statuses = projection_status(store)
        assert {s.state for s in statuses} == {"stopped"}
        assert all(s.owner is None for s in statuses)
        assert "stopped at position" in processes.log(runner)
        check_balances_only(store)


def check_balances_only(store: EventStore) -> None:
    assert stored_balances(store) == scratch_balances(store)
