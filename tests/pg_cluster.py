"""A real PostgreSQL server for the test suite (and the benchmarks).

- ``EVENTKEEP_TEST_POSTGRES_URL`` set: the tests use that server; each test works in a fresh
  schema of its own (dropped afterwards), so any database the URL's user may create schemas in
  will do.
- Otherwise, when PostgreSQL's server binaries are found (on ``PATH`` or in
  ``/usr/lib/postgresql/*/bin``), a throwaway cluster is created with ``initdb`` in a temporary
  directory, started on a free loopback port as a child process of the test session (so a
  killed server can be reaped and restarted at once), and removed at the end of the session.
  ``initdb`` and ``postgres`` refuse to run as root, so under root they run as the ``postgres``
  OS user.
- Neither: PostgreSQL tests are skipped with the reason, except when ``CI`` is set, where a
  missing PostgreSQL is a failure.

The throwaway test cluster runs with ``fsync=off`` to keep the suite fast. That does not weaken
the crash tests: they kill server *processes*, and with ``synchronous_commit=on`` (kept) a commit
is acknowledged only after its WAL reached the kernel, which survives a process kill. Only an
operating-system crash would need the fsync. ``Cluster(durable=True)`` (the benchmarks) keeps it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

ENV_URL = "EVENTKEEP_TEST_POSTGRES_URL"
_SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")


def in_ci() -> bool:
    return bool(os.environ.get("CI", "").strip())


def find_bin_dir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0],
        reverse=True,
    )
    candidates.extend(versions)
    for folder in candidates:
        if all((folder / tool).exists() for tool in _SERVER_TOOLS):
            return folder
    return None


def availability() -> tuple[bool, str]:
    """Whether PostgreSQL tests can run here, and how (or why not)."""
    if not driver_installed():
        return False, "psycopg is not installed: pip install -e '.[postgres]' (or '.[dev]')"
    if os.environ.get(ENV_URL):
        return True, f"using ${ENV_URL}"
    folder = find_bin_dir()
    if folder is not None:
        return True, f"throwaway cluster from {folder}"
    return False, (
        f"PostgreSQL tests need ${ENV_URL} or PostgreSQL server binaries "
        "(initdb, pg_ctl, postgres on PATH or in /usr/lib/postgresql/*/bin); "
        "install them, e.g. apt-get install postgresql"
    )


def driver_installed() -> bool:
    try:
        return importlib.util.find_spec("psycopg") is not None
    except ValueError:  # a stub in sys.modules
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A throwaway PostgreSQL cluster in a temporary directory, owned by this process."""

    def __init__(self, *, durable: bool = False, settings: dict[str, Any] | None = None) -> None:
        folder = find_bin_dir()
        if folder is None:
            raise RuntimeError(availability()[1])
        self.bin_dir = folder
        self.durable = durable
        self.settings = dict(settings or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._as_user: dict[str, Any] = {}
        owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            # initdb and postgres refuse to run as root: they run as `postgres`, in its folder.
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root, the test cluster needs a `postgres` OS user to run as"
                ) from None
            owner = (account.pw_uid, account.pw_gid)
            self._as_user = {"user": owner[0], "group": owner[1], "extra_groups": []}
        self.root = Path(tempfile.mkdtemp(prefix="eventkeep-pg-"))
        if owner is not None:
            os.chown(self.root, *owner)
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self.port = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            check=check,
            capture_output=True,
            text=True,
            cwd=self.root,
            env=env,
            timeout=120,
            **self._as_user,
        )

    def create(self) -> Cluster:
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed:\n{exc.stdout}\n{exc.stderr}") from exc
        return self

    def _options(self) -> list[str]:
        settings: dict[str, Any] = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": str(self.root),
            "max_connections": 300,
            "synchronous_commit": "on",
            "fsync": "on" if self.durable else "off",
            "full_page_writes": "on" if self.durable else "off",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            **self.settings,
        }
        return [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]

    def start(self) -> Cluster:
        """Start the server (on a fresh free port the first time), waiting until it accepts.

        The postmaster is this process's child (not pg_ctl's), so that after a SIGKILL this
        process reaps it and it can restart at once: a dead but unreaped postmaster still owns
        its data directory's lock file.
        """
        last = ""
        for _attempt in range(5):
            if not self.port:
                self.port = free_port()
            with self.log_file.open("ab") as log:
                self._proc = subprocess.Popen(
                    [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), *self._options()],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.root,
                    env={**os.environ, "LC_ALL": "C", "LANG": "C"},
                    start_new_session=True,
                    **self._as_user,
                )
            if self._wait_ready():
                return self
            last = self.server_log()[-3000:]
            self._reap()
            if "already in use" not in last and "could not bind" not in last:
                break
            self.port = 0  # someone took the port between our probe and the bind: retry
        raise RuntimeError(f"could not start PostgreSQL in {self.data_dir}:\n{last}")

    def _wait_ready(self, timeout: float = 60.0) -> bool:
        """Until the server accepts TCP connections; False if it exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            status = self._status_line()
            if status == "ready":
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", self.port), timeout=1),
                ):
                    return True
            time.sleep(0.05)
        return False

    def _status_line(self) -> str:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return ""
        return lines[7].strip() if len(lines) > 7 else ""

    def _reap(self, timeout: float = 60.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def server_log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def postmaster_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        return int(first) if first.strip().isdigit() else None

    def server_pids(self) -> list[int]:
        """The postmaster and every process it started."""
        root = self.postmaster_pid()
        if root is None:
            return []
        pids = [root]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == root:
                    pids.append(int(entry.name))
        return pids

    def kill(self) -> None:
        """SIGKILL the server: the postmaster and every process it had started, at once."""
        pids = self.server_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.05)

    def stop(self) -> None:
        """Immediate shutdown (SIGQUIT), then reap the postmaster."""
        if self._proc is not None and self._proc.poll() is None:
            pid = self.postmaster_pid() or self._proc.pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
        self._reap()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def start_cluster(**kwargs: Any) -> Cluster:
    cluster = Cluster(**kwargs)
    try:
        return cluster.create().start()
    except BaseException:
        cluster.destroy()
        raise


class ReplicaCluster(Cluster):
    """A hot standby of ``primary``, streaming from it: ``pg_basebackup -R`` into a temporary
    directory, then started on a port of its own. The primary needs ``wal_level=replica`` (the
    default), free WAL senders and a ``replication`` line in pg_hba.conf (``initdb -A trust``
    writes one for local and loopback connections)."""

    def __init__(self, primary: Cluster) -> None:
        super().__init__(durable=primary.durable, settings={"hot_standby": "on"})
        self.primary = primary

    def create(self) -> ReplicaCluster:
        conninfo = f"host=127.0.0.1 port={self.primary.port} user=postgres"
        try:
            self._run(
                "pg_basebackup",
                "-D",
                str(self.data_dir),
                "-d",
                conninfo,
                "-R",  # standby.signal and primary_conninfo: start as a streaming standby
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            )
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"pg_basebackup failed:\n{exc.stdout}\n{exc.stderr}") from exc
        return self

    def start(self) -> ReplicaCluster:
        super().start()
        self.wait_streaming()
        return self

    def wait_streaming(self, timeout: float = 60.0) -> None:
        """Until the server is in recovery and its WAL receiver streams from the primary."""
        import psycopg

        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(psycopg.OperationalError),
                psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn,
            ):
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver LIMIT 1)"
                ).fetchone()
                last = row
                if row is not None and row[0] and row[1] == "streaming":
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the replica did not start streaming ({last!r}):\n{self.server_log()}")


def start_replica(primary: Cluster) -> ReplicaCluster:
    replica = ReplicaCluster(primary)
    try:
        return replica.create().start()
    except BaseException:
        replica.destroy()
        raise
