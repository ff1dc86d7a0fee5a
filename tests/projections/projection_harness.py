"""Helpers of the projection tests: the bank, OS processes with bounded waits, polling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

import eventkeep
from eventkeep import EventStore
from eventkeep.examples.bank import BankAccount

HERE = Path(__file__).parent
WORKERS = HERE / "projection_workers.py"
PROBE = HERE / "runner_probe.py"
SRC = HERE.parent.parent / "src"


def open_bank(store: EventStore, accounts: tuple[str, ...], deposit: str = "1000.00") -> None:
    repo = eventkeep.Repository(store, BankAccount)
    for account_id in accounts:
        account = repo.create(account_id)
        account.open(owner=account_id.upper())
        account.deposit(Decimal(deposit))
        repo.save(account)


class Processes:
    """OS processes started by a test; every wait bounded, every survivor killed at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)])}
        err = (self.tmp_path / f"proc-{len(self.started)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE, stderr=err, env=env
        )
        err.close()
        self.started.append(proc)
        return proc

    def worker(self, *args: object) -> subprocess.Popen[bytes]:
        return self.start(str(WORKERS), *map(str, args))

    def runner(
        self, url: str, *targets: str, ttl: float = 2.0, probe: bool = False
    ) -> subprocess.Popen[bytes]:
        """``eventkeep projections run``; with ``probe``, under ``runner_probe.py``, which also
        logs when the runner finds a lease held by another one (a standby logs nothing else)."""
        command = [str(PROBE)] if probe else ["-m", "eventkeep"]
        return self.start(
            *command, "--store", url, "projections", "run", "--lease-ttl", str(ttl), *targets
        )

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        index = self.started.index(proc)
        return (self.tmp_path / f"proc-{index}.log").read_text(errors="replace")

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def finish(self, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            pytest.fail(f"process did not finish in {timeout}s: {self.log(proc)}")

    def close(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                self.kill(proc)
            if proc.stdout is not None:
                proc.stdout.close()


def wait_until(check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(0.02)
