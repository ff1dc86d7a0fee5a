"""PostgreSQL for the benchmarks: a throwaway durable cluster, and a fresh database per run.

The cluster comes from the test suite's ``tests/pg_cluster.py`` (``initdb`` + ``postgres`` on a
free loopback port, as the ``postgres`` OS user under root), started with ``durable=True``:
``fsync``, ``full_page_writes`` and ``synchronous_commit`` on, every other setting PostgreSQL's
default. ``EVENTKEEP_BENCH_POSTGRES_URL`` points the benchmarks at a server of your own instead
(it must allow ``CREATE DATABASE``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.systems.base import Target

ENV_URL = "EVENTKEEP_BENCH_POSTGRES_URL"
_TESTS = Path(__file__).resolve().parent.parent / "tests"


class Server:
    """A PostgreSQL server to benchmark on: ours (throwaway) or the one in ``ENV_URL``."""

    def __init__(self) -> None:
        self._cluster: Any = None
        url = os.environ.get(ENV_URL)
        if not url:
            if str(_TESTS) not in sys.path:
                sys.path.insert(0, str(_TESTS))
            import pg_cluster

            self._cluster = pg_cluster.start_cluster(durable=True)
            url = self._cluster.url
        parts = urlsplit(url)
        self.admin_url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.description = (
            "throwaway local cluster (fsync on, otherwise PostgreSQL defaults)"
            if self._cluster is not None
            else f"${ENV_URL}"
        )
        self.version = self._scalar("SHOW server_version")
        self.settings = {
            name: self._scalar(f"SHOW {name}")
            for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
        }

    def _scalar(self, statement: str) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(statement).fetchone()
        return str(row[0]) if row else ""

    @contextlib.contextmanager
    def database(self) -> Iterator[Target]:
        """A fresh, empty database for one run, dropped afterwards."""
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        try:
            yield Target("postgres", host=self.host, port=self.port, user=self.user, dbname=name)
        finally:
            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.destroy()
            self._cluster = None
