"""``open_store(url)``: one way to open every backend.

- ``memory://``                         the in-memory reference store
- ``sqlite:///relative/path.db``        a SQLite file, relative to the working directory
- ``sqlite:////absolute/path.db``       a SQLite file at an absolute path
- ``postgresql://user:pass@host:port/db``  PostgreSQL (needs ``pip install 'eventkeep[postgres]'``)
- ``postgresql://user:pass@primary/db?read_host=replica&read_port=5433``  reads served by a
  streaming replica (or ``open_store(url, read_url="postgresql://...")``)

Options go in the query string or as keyword arguments, e.g.
``sqlite:///app.db?synchronous=NORMAL&busy_timeout=30`` or
``open_store(url, max_event_bytes=2**21)``.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any
from urllib.parse import parse_qsl

from eventkeep.errors import ConfigurationError
from eventkeep.store import EventStore
from eventkeep.store.events import TypeRegistry

__all__ = ["DEFAULT_STORE_URL", "open_store", "redact"]

DEFAULT_STORE_URL = "sqlite:///eventkeep.db"

_BOOL_OPTIONS = {"group_commit"}
_BOOLEANS = {"on": True, "true": True, "yes": True, "1": True}
_BOOLEANS.update({"off": False, "false": False, "no": False, "0": False})
_INT_OPTIONS = {"max_event_bytes", "pool_size", "pool_min_size", "pool_max_size", "read_port"}
_FLOAT_OPTIONS = {
    "busy_timeout",
    "pool_timeout",
    "connect_timeout",
    "lock_timeout",
    "idle_in_transaction_timeout",
    "poll_interval",
    "replica_wait",
}


_SECRET_OPTION = re.compile(
    r"""(?ix)
    (\b(?:password|sslpassword|passfile|sslkey)\s*=\s*)   # a keyword or query option
    ('(?:[^'\\]|\\.)*'?|[^\s&]*)                       # its value, quoted or not
    """
)


def redact(text: str) -> str:
    """``text`` (a store URL or a libpq keyword string) with every credential as ``***``.

    The password of ``scheme://user:password@host`` (everything between the first ``:`` after
    the user and the last ``@``, so a password holding ``@`` or ``/`` is hidden whole) and the
    value of ``password=``/``sslpassword=`` options. Used for every message, repr and log line
    that shows a URL: eventkeep never prints a credential.
    """
    scheme, sep, rest = text.partition("//")
    if sep:
        at = rest.rfind("@")
        if at >= 0:
            userinfo = rest[:at]
            user, colon, _ = userinfo.partition(":")
            rest = f"{user}{colon}{'***' if colon else ''}{rest[at:]}"
        text = f"{scheme}{sep}{rest}"
    return _SECRET_OPTION.sub(lambda m: f"{m.group(1)}***", text)


def open_store(url: str, *, registry: TypeRegistry | None = None, **options: Any) -> EventStore:
    """Open the event store at ``url``; see the module docs for the URL forms."""
    if not isinstance(url, str) or "://" not in url:
        shown = redact(url) if isinstance(url, str) else type(url).__name__
        raise ConfigurationError(
            "store URL must look like memory://, sqlite:///file.db or postgresql://..., "
            f"got {shown!r}"
        )
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    rest, _, query = rest.partition("?")
    shown = redact(url)
    merged = {**_parse_options(query), **options}
    if scheme == "memory":
        from eventkeep.backends.memory import MemoryStore

        _check_options(MemoryStore, merged, shown)
        return MemoryStore(shown, registry=registry, **merged)
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            hint = ""
            if rest and not rest.startswith("/"):
                shown_rest = shown.partition("://")[2].partition("?")[0]
                hint = (
                    f" (two slashes make {shown_rest.partition('/')[0]!r} a host, which SQLite "
                    "URLs do not have; for a file in the working directory write "
                    f"sqlite:///{shown_rest})"
                )
            raise ConfigurationError(
                "SQLite URLs are sqlite:///relative.db or sqlite:////absolute.db, "
                f"got {shown!r}{hint}"
            )
        from eventkeep.backends.sqlite import SQLiteStore

        _check_options(SQLiteStore, merged, shown)
        return SQLiteStore(rest[1:], registry=registry, **merged)
    if scheme in ("postgresql", "postgres"):
        try:
            module = importlib.import_module("eventkeep.backends.postgres")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] in ("psycopg", "psycopg_pool"):
                raise ConfigurationError(
                    "the PostgreSQL backend needs psycopg: pip install 'eventkeep[postgres]'"
                ) from exc
            raise ConfigurationError("this eventkeep has no PostgreSQL backend yet") from exc
        dsn = url.split("?", 1)[0]
        store: EventStore = module.PostgresStore(dsn, registry=registry, **merged)
        return store
    raise ConfigurationError(
        f"unknown store URL scheme {scheme!r} in {shown!r}; use memory, sqlite or postgresql"
    )


def check_sqlite_options(url: str) -> None:
    """Refuse a ``sqlite:///`` URL's unknown or bad options without touching its file: the
    names against the URL as given, the values by a private in-memory database."""
    from eventkeep.backends.sqlite import SQLiteStore

    options = _parse_options(url.partition("?")[2])
    _check_options(SQLiteStore, options, redact(url))
    SQLiteStore(":memory:", **options).close()


def _check_options(cls: type[EventStore], options: dict[str, Any], url: str) -> None:
    """Refuse options the backend does not take, rather than let a TypeError escape."""
    params = inspect.signature(cls).parameters
    known = sorted(n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n != "registry")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigurationError(
            f"unknown store option(s) {', '.join(unknown)} for {url!r}; "
            f"{cls.__name__} takes {', '.join(known)}"
        )


def _parse_options(query: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        try:
            if key in _INT_OPTIONS:
                options[key] = int(value)
            elif key in _FLOAT_OPTIONS:
                options[key] = float(value)
            elif key in _BOOL_OPTIONS:
                if value.lower() not in _BOOLEANS:
                    raise ConfigurationError(
                        f"store URL option {key}={value!r} must be on or off (true or false)"
                    )
                options[key] = _BOOLEANS[value.lower()]
            else:
                options[key] = value
        except ValueError:
            shown = "***" if _SECRET_OPTION.match(f"{key}=") else repr(value)
            raise ConfigurationError(f"store URL option {key}={shown} is not a number") from None
    return options
