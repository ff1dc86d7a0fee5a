"""The asyncio API's connections to PostgreSQL: a ``psycopg_pool.AsyncConnectionPool`` set up
like the synchronous store's pool (``connection.py``: the same connection string, session
settings, type loaders, maximum lifetime and check on checkout), and the same translation of
driver errors (``Database.error_of``).

It belongs to one event loop (the one that opened it); the synchronous store's ``Database``
keeps its own pool for what runs on the store's threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from eventkeep.backends.postgres.connection import MAX_LIFETIME, Database, register_loaders
from eventkeep.errors import BackendUnavailableError, EventkeepError

__all__ = ["AsyncDatabase"]


class AsyncDatabase:
    """An ``AsyncConnectionPool`` for the store of ``db``, and its error translation."""

    def __init__(self, db: Database, *, min_size: int, max_size: int) -> None:
        self.db = db
        self.url = db.url
        self.min_size, self.max_size = min_size, max_size
        self._checks: set[asyncio.Task[None]] = set()
        self.pool = AsyncConnectionPool(
            db.conninfo,
            kwargs={"autocommit": True},
            min_size=min_size,
            max_size=max_size,
            timeout=db.pool_timeout,
            open=False,
            configure=self.configure,
            max_lifetime=MAX_LIFETIME,
            check=check_on_checkout,
            name=f"eventkeep-aio:{db.schema}",
        )

    async def open(self) -> None:
        """Open the pool and wait for its first ``min_size`` connections (PoolTimeout after
        ``pool_timeout``: then the pool is closed)."""
        await self.pool.open(wait=True, timeout=self.db.pool_timeout)

    async def close(self) -> None:
        await self.pool.close()

    async def configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The synchronous pool's session set-up: schema, isolation, lock timeout, loaders."""
        await conn.execute(self.db.session_sql)
        register_loaders(conn)

    async def connect(self) -> psycopg.AsyncConnection[Any]:
        """A configured connection outside the pool (the LISTEN connection)."""
        with self.translate(connecting=True):
            conn = await psycopg.AsyncConnection.connect(self.db.conninfo, autocommit=True)
        try:
            with self.translate():
                await self.configure(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection, with every driver error translated."""
        with self.translate():
            async with self.pool.connection() as conn:
                yield conn

    @contextlib.contextmanager
    def translate(self, *, connecting: bool = False) -> Iterator[None]:
        """psycopg and pool exceptions as eventkeep errors, as ``Database.translate``."""
        try:
            yield
        except EventkeepError:
            raise
        except PoolTimeout as exc:
            raise BackendUnavailableError(
                f"{self.url}: no database connection became free within pool_timeout="
                f"{self.db.pool_timeout:g}s (all {self.pool.max_size} connections of the "
                "asyncio pool in use, or the server cannot be reached); nothing was sent. "
                "Raise pool_max_size or pool_timeout, or run fewer calls at once",
                retryable=True,
            ) from exc
        except PoolClosed as exc:
            raise BackendUnavailableError(f"{self.url}: the store is closed") from exc
        except psycopg.Error as exc:
            error = self.db.error_of(exc, connecting=connecting)
            if error.outcome_unknown:
                # Let go of the other connections that died with this one (not awaited here).
                with contextlib.suppress(RuntimeError):
                    task = asyncio.get_running_loop().create_task(self._check())
                    self._checks.add(task)
                    task.add_done_callback(self._checks.discard)
            raise error from exc

    async def _check(self) -> None:
        with contextlib.suppress(Exception):
            await self.pool.check()


async def check_on_checkout(conn: psycopg.AsyncConnection[Any]) -> None:
    """``leases.check_on_checkout`` for the asyncio pool: a round trip only for a
    connection whose socket says the server has spoken (most often: it is gone)."""
    if conn.closed:
        raise psycopg.OperationalError("the pooled connection is closed")
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        await conn.execute("")  # raises if the connection is dead
