"""The harness of the SQLite tests: worker processes started, read and stopped with timeouts."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

WORKERS = Path(__file__).with_name("sqlite_workers.py")


class Workers:
    """Starts ``workers.py`` commands as OS processes; every wait is bounded by a timeout."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, *args: object, stdin: bool = False) -> subprocess.Popen[bytes]:
        errors = self._tmp_path / f"worker-{len(self._started)}.stderr"
        with errors.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(WORKERS), *map(str, args)],
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                bufsize=0,
            )
        self._started.append((proc, errors))
        return proc

    def stderr(self, proc: subprocess.Popen[bytes]) -> str:
        for started, errors in self._started:
            if started is proc:
                return errors.read_text(errors="replace")
        raise LookupError(proc)

    def readline(self, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> str:
        """The worker's next line of output; fails (never hangs) if none comes in time."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(remaining, 0))
            if not ready:
                pytest.fail(f"no output from worker within {timeout}s: {self.stderr(proc)}")
            chunk = os.read(fd, 1)
            if not chunk:
                proc.wait(timeout=timeout)
                pytest.fail(f"worker exited ({proc.returncode}) early: {self.stderr(proc)}")
            line += chunk
        return line.decode().strip()

    def finish(self, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> str:
        """Wait for a worker to exit; it must exit 0. Returns its remaining output."""
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            pytest.fail(f"worker did not finish within {timeout}s: {self.stderr(proc)}")
        assert proc.returncode == 0, f"worker failed ({proc.returncode}): {self.stderr(proc)}"
        return out.decode()

    @staticmethod
    def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.002)

    def stop_all(self) -> None:
        for proc, _ in self._started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
