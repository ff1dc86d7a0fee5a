"""Connections to PostgreSQL: the pool, session set-up, type loaders, schema migrations, and the
one place where psycopg and pool exceptions become eventkeep errors.
"""

from __future__ import annotations

import contextlib
import math
import re
import struct
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import Format
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from eventkeep.backends.postgres import faults, sql
from eventkeep.backends.postgres.faults import first_line
from eventkeep.backends.postgres.leases import Lease, Slot, check_on_checkout
from eventkeep.errors import (
    BackendUnavailableError,
    ConfigurationError,
    EventkeepError,
    NotFoundError,
    SchemaVersionError,
)
from eventkeep.store.migrations import load_migrations

__all__ = ["Database", "check_schema_name"]

MIN_SERVER_VERSION = 120000
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,47}")
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since the Unix epoch
_unpack_int8 = struct.Struct("!q").unpack


def check_schema_name(schema: Any) -> str:
    if not isinstance(schema, str) or _SCHEMA_NAME.fullmatch(schema) is None:
        raise ConfigurationError(
            "schema must be 1-48 lower-case letters, digits or underscores, starting with a "
            f"letter or underscore, got {schema!r}"
        )
    if schema.startswith("pg_"):
        raise ConfigurationError(f"schema names starting with pg_ are reserved, got {schema!r}")
    return schema


class _UUIDAsBytes(Loader):
    """uuid columns as their 16 bytes (what the hash chain and RecordedEvent take)."""

    format = Format.BINARY

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


class _TimestampAsMicros(Loader):
    """timestamptz columns as exact microseconds since the Unix epoch, UTC."""

    format = Format.BINARY

    def load(self, data: Buffer) -> int:
        return int(_unpack_int8(data)[0]) + _PG_EPOCH_US


def register_loaders(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """uuid columns as bytes, timestamptz as microseconds (every connection of a store)."""
    conn.adapters.register_loader("uuid", _UUIDAsBytes)
    conn.adapters.register_loader("timestamptz", _TimestampAsMicros)


MAX_LIFETIME = 30 * 60.0
"""Seconds after which the pool replaces a connection (spreads server-side memory growth and
follows a failover's DNS change). Each checkout is checked without a round trip
(``leases.check_on_checkout``; psycopg_pool's own check, a ping, cost 35-40% of the throughput
of repository loads here); a connection that dies during a call fails that call with a
retryable error, and the pool then checks its idle connections once (``Database.translate``)."""


class Database:
    """The store's connection pool and settings, and the translation of driver errors."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str,
        pool_min_size: int,
        pool_max_size: int,
        pool_timeout: float,
        connect_timeout: float,
        lock_timeout: float,
        idle_in_transaction_timeout: float,
        params: dict[str, Any],
        group_commit: bool = True,
    ) -> None:
        self.schema = schema
        self.group_commit = group_commit
        self.pool_min_size = pool_min_size
        self.pool_max_size = pool_max_size
        self.pool_timeout = pool_timeout
        self.lock_timeout = lock_timeout
        self.url = "postgresql://"  # until the connection string is parsed
        info = _parse_conninfo(dsn, params)
        info["connect_timeout"] = str(max(2, math.ceil(connect_timeout)))
        self.conninfo = _make_conninfo(info)
        self.url = _display_url(info, schema)
        self.channel = f"eventkeep_{schema}"
        self.session_sql = sql.CONFIGURE_SESSION.format(
            schema=quoted(schema),
            lock_timeout_ms=max(1, round(lock_timeout * 1000)),
            idle_ms=max(1, round(idle_in_transaction_timeout * 1000)),
            group_commit="on" if group_commit else "off",
        )
        self.idle_in_transaction_timeout = idle_in_transaction_timeout
        self._pool = ConnectionPool(
            self.conninfo,
            kwargs={"autocommit": True},
            min_size=pool_min_size,
            max_size=pool_max_size,
            timeout=pool_timeout,
            open=False,
            configure=self.configure,
            max_lifetime=MAX_LIFETIME,
            check=check_on_checkout,
            name=f"eventkeep:{schema}",
        )
        self._slot = Slot()

    # -- connections ------------------------------------------------------------------------------

    def configure(self, conn: psycopg.Connection[Any]) -> None:
        """Session set-up of every connection: schema, isolation, lock timeout, loaders."""
        conn.execute(self.session_sql)
        register_loaders(conn)

    def connect(self) -> psycopg.Connection[Any]:
        """A connection outside the pool (migrations, LISTEN), already configured."""
        with self.translate(connecting=True):
            conn = psycopg.connect(self.conninfo, autocommit=True)
        try:
            with self.translate():
                _check_server(conn, self.url)
                self.configure(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def open(self) -> None:
        self._pool.open(wait=False)

    def connection(self) -> Lease:
        """A pooled connection (``with db.connection() as conn:``; the slot's when it is
        free, see :class:`~eventkeep.backends.postgres.leases.Slot`), with every driver error
        translated; on an error, a transaction left open on it is rolled back before it goes
        back."""
        return Lease(self)

    def close(self) -> None:
        self._slot.close(self._pool)
        self._pool.close()

    # -- errors -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def translate(self, *, connecting: bool = False) -> Iterator[None]:
        """The one place psycopg and pool exceptions become eventkeep errors (through the
        SQLSTATE table in :mod:`eventkeep.backends.postgres.faults`)."""
        try:
            yield
        except (PoolTimeout, PoolClosed, psycopg.Error) as exc:
            raise self.translated(exc, connecting=connecting) from exc

    def translated(
        self, exc: PoolTimeout | PoolClosed | psycopg.Error, *, connecting: bool = False
    ) -> EventkeepError:
        """The eventkeep error to raise for a driver or pool exception (see :meth:`translate`)."""
        if isinstance(exc, PoolTimeout):
            return self._pool_timeout()
        if isinstance(exc, PoolClosed):
            return BackendUnavailableError(f"{self.url}: the store is closed")
        error = self.error_of(exc, connecting=connecting)
        if error.outcome_unknown:
            pool = getattr(self, "_pool", None)  # none yet while the store opens
            if pool is not None:
                with contextlib.suppress(Exception):
                    pool.check()  # let go of the other connections that died with this one
        return error

    def error_of(self, exc: psycopg.Error, *, connecting: bool = False) -> EventkeepError:
        """The eventkeep error for a psycopg error (the asyncio API's pool uses it too)."""
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return BackendUnavailableError(
                f"{self.url}: waited more than lock_timeout={self.lock_timeout:g}s for a lock "
                f"held by another transaction ({first_line(exc)}); the transaction was rolled "
                "back, nothing of it was stored; retrying is safe",
                retryable=True,
            )
        return faults.translate(self.url, exc, connecting=connecting)

    def _pool_timeout(self) -> BackendUnavailableError:
        """A pool that found no connection: all in use, or the server cannot be reached."""
        stats = self._pool.get_stats()
        if stats.get("pool_size", 0) < self.pool_max_size:
            # The pool had room to grow: it failed to connect, it was not exhausted.
            try:
                probe = psycopg.connect(self.conninfo, autocommit=True)
            except psycopg.Error as exc:
                error = faults.translate(self.url, exc, connecting=True)
                if isinstance(error, BackendUnavailableError):
                    return BackendUnavailableError(
                        f"{self.url}: no connection within pool_timeout={self.pool_timeout:g}s: "
                        f"the server cannot be reached ({first_line(exc)}); nothing was sent",
                        retryable=True,
                    )
                raise error from exc
            probe.close()
        return BackendUnavailableError(
            f"{self.url}: no database connection became free within pool_timeout="
            f"{self.pool_timeout:g}s; all {self.pool_max_size} connections of the pool "
            "(pool_max_size) are in use. Raise pool_max_size or pool_timeout, or use "
            "fewer threads at once",
            retryable=True,
        )

    # -- migrations -------------------------------------------------------------------------------

    def require_store(self) -> None:
        """Raise NotFoundError unless the schema holds an eventkeep store (creates nothing)."""
        name = f"{quoted(self.schema)}.eventkeep_migrations"
        with self.connect() as conn, self.translate():
            exists = conn.execute(sql.MIGRATIONS_TABLE_EXISTS, (name,)).fetchone()
        if not (exists and exists[0]):
            raise NotFoundError(
                f"no event store at {self.url}: schema {self.schema!r} holds no eventkeep store "
                "(append an event to create it, or check the schema option)"
            )

    def migrate(self, then: Callable[[psycopg.Connection[Any]], None] | None = None) -> None:
        """Create the schema or bring it up to date; refuse a schema newer than this code.
        ``then``: a check of the store, run last on the same connection (in its schema)."""
        migrations = load_migrations("eventkeep.backends.postgres")
        latest = migrations[-1].version
        schema = quoted(self.schema)
        with self.connect() as conn, self.translate():
            exists = conn.execute(
                sql.MIGRATIONS_TABLE_EXISTS, (f"{schema}.eventkeep_migrations",)
            ).fetchone()
            if exists and exists[0]:
                current = _one(conn, sql.SCHEMA_VERSION_OF.format(schema=schema))
                _check_version(self.url, current, latest)
                if current == latest:
                    if then is not None:
                        then(conn)
                    return
            with conn.transaction():
                conn.execute(sql.MIGRATION_LOCK, (self.schema,))
                conn.execute(sql.CREATE_SCHEMA.format(schema=schema))
                conn.execute(sql.USE_SCHEMA.format(schema=schema))
                conn.execute(sql.CREATE_MIGRATIONS)
                current = _one(conn, sql.SCHEMA_VERSION)
                _check_version(self.url, current, latest)
                for migration in migrations[current:]:
                    conn.execute(migration.sql)
                    conn.execute(sql.RECORD_MIGRATION, (migration.version, migration.name))
            if then is not None:
                then(conn)


def _one(conn: psycopg.Connection[Any], statement: str) -> int:
    row = conn.execute(statement).fetchone()
    return int(row[0]) if row else 0


def _check_version(url: str, current: int, latest: int) -> None:
    if current > latest:
        raise SchemaVersionError(
            f"{url} has schema version {current}, but this eventkeep knows versions up to "
            f"{latest}; upgrade eventkeep to open it"
        )


def _check_server(conn: psycopg.Connection[Any], url: str) -> None:
    version = conn.info.server_version
    if version < MIN_SERVER_VERSION:
        raise ConfigurationError(f"{url}: eventkeep needs PostgreSQL 12 or newer, got {version}")
    encoding = conn.info.parameter_status("server_encoding")
    if encoding != "UTF8":
        raise ConfigurationError(
            f"{url}: eventkeep needs a UTF8 database, this one is {encoding!r}"
        )


_QUOTED = re.compile(r'"[^"]*"')
_PORTS = re.compile(r"\d{1,5}(,\d{0,5})*")


def _parse_conninfo(dsn: str, params: dict[str, Any]) -> dict[str, Any]:
    """The connection string's settings, or a ConfigurationError that shows none of it.

    libpq's own messages quote the offending part, which may be the password
    (``invalid percent-encoded token: "S3cret%zz"``): the quoted parts are left out, and the
    driver's exception is not chained (it is raised outside the handler), so no credential
    reaches a message, a log or a traceback.
    """
    problem = None
    try:
        info: dict[str, Any] = conninfo_to_dict(dsn, **{k: str(v) for k, v in params.items()})
    except psycopg.Error as exc:
        problem = _QUOTED.sub('"..."', first_line(exc))
    except (TypeError, ValueError):
        problem = "not a connection string"
    if problem is not None:
        raise ConfigurationError(
            f"the PostgreSQL connection string is malformed ({problem}); it looks like "
            "postgresql://user:password@host:port/dbname (percent-encode @ : / % # ? in the "
            "password)"
        )
    if "@" in str(info.get("host") or ""):
        raise ConfigurationError(
            "the PostgreSQL connection string has @ in its host (not shown, as it may hold a "
            "password): percent-encode @ in a password as %40"
        )
    port = info.get("port")
    if port is not None and _PORTS.fullmatch(str(port)) is None:
        raise ConfigurationError(
            "the PostgreSQL connection string has a port that is not a number (not shown, as "
            "it may be a password: postgresql://user:password@host:port/dbname needs the @)"
        )
    return info


def _make_conninfo(info: dict[str, Any]) -> str:
    """The libpq keyword string of ``info``; an unknown option is named, no value is shown."""
    try:
        return make_conninfo("", **info)
    except psycopg.Error:
        pass
    known = {o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults()}
    unknown = sorted(k for k in info if k not in known) or ["?"]
    raise ConfigurationError(
        f"unknown PostgreSQL connection option(s) {', '.join(unknown)} (options that are not "
        "eventkeep's own go to libpq as connection parameters)"
    )


def _display_url(info: dict[str, Any], schema: str) -> str:
    """The store's URL for messages and repr: no password, and the schema."""
    user = info.get("user")
    host = info.get("host") or ""
    port = info.get("port")
    where = f"{host}:{port}" if port else host
    auth = f"{user}@" if user else ""
    return f"postgresql://{auth}{where}/{info.get('dbname') or ''}?schema={schema}"


def quoted(name: str) -> str:
    """A quoted identifier: schema names may be reserved words ("user", "order")."""
    return pgsql.Identifier(name).as_string()


_CURSORS: weakref.WeakKeyDictionary[psycopg.Connection[Any], dict[bool, psycopg.Cursor[Any]]] = (
    weakref.WeakKeyDictionary()
)

SMALL_RESULT = 100
"""Rows a reused cursor may keep after a read: a larger result is let go with its cursor."""


def reused_cursor(conn: psycopg.Connection[Any], binary: bool) -> psycopg.Cursor[Any]:
    """The connection's cursor of this format, for statements run one at a time.

    A new cursor per statement costs 20-25 µs of client CPU here (a new transformer, its
    adapters and dumpers looked up again): about 8% of a one-event append and 15-20% of a
    10-event stream read. A connection is used by one thread at a time (a pool lease or a store
    transaction), and each statement's rows are fetched before the next statement runs. The
    cursor keeps its last result until its next statement: :func:`release_large` lets a large
    one go.
    """
    cursors = _CURSORS.get(conn)
    if cursors is None:
        cursors = _CURSORS[conn] = {}
    cur = cursors.get(binary)
    if cur is None:
        cur = cursors[binary] = conn.cursor(binary=binary)
    return cur


def release_large(conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any], rows: int) -> None:
    """Close ``cur`` (and forget it) if its result held more than SMALL_RESULT rows, so that a
    pooled connection does not keep a large page alive until its next statement."""
    if rows > SMALL_RESULT:
        cursors = _CURSORS.get(conn)
        if cursors is not None:
            cursors.pop(cur.format == psycopg.pq.Format.BINARY, None)
        cur.close()
