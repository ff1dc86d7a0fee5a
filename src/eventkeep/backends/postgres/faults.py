"""What a PostgreSQL failure means to the caller: one table of SQLSTATEs, most specific first.

Every psycopg and pool exception becomes an eventkeep error here, and nowhere else. Each row of
:data:`FAULTS` says, for a SQLSTATE (five characters) or a class of them (two), which eventkeep
error it is, whether retrying the call can help (``retryable``), and whether a write that failed
this way may have been stored (``outcome_unknown``: only a connection lost while a statement or
its commit was on the way). Callers act on the flags, not on the text::

    except eventkeep.BackendUnavailableError as exc:
        if exc.retryable:
            ...  # retry (with the same event ids: an append is idempotent)
        else:
            ...  # fix the configuration or the server

Messages never contain a password: the store's display URL has none, and libpq's messages do
not repeat it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import psycopg

from eventkeep.errors import (
    BackendUnavailableError,
    ConfigurationError,
    EventkeepError,
    IntegrityError,
)

__all__ = ["FAULTS", "Fault", "classify", "connection_lost", "first_line"]


class Fault(NamedTuple):
    sqlstate: str
    """A full SQLSTATE (``"40P01"``) or a class of them (``"08"``)."""
    error: type[EventkeepError]
    retryable: bool
    outcome_unknown: bool
    meaning: str


_ROLLED_BACK = "the transaction was rolled back, nothing of it was stored; retrying is safe"

FAULTS: tuple[Fault, ...] = (
    # Transaction rollbacks: the server undid the work, the call can be repeated.
    Fault("40P01", BackendUnavailableError, True, False, f"a deadlock: {_ROLLED_BACK}"),
    Fault(
        "40001", BackendUnavailableError, True, False, f"a serialization failure: {_ROLLED_BACK}"
    ),
    Fault("40", BackendUnavailableError, True, False, f"a transaction rollback: {_ROLLED_BACK}"),
    Fault("55P03", BackendUnavailableError, True, False, f"a lock timeout: {_ROLLED_BACK}"),
    Fault(
        "57014",
        BackendUnavailableError,
        True,
        False,
        f"the statement was cancelled: {_ROLLED_BACK}",
    ),
    Fault(
        "25P03",
        BackendUnavailableError,
        True,
        False,
        "the session sat idle in a transaction longer than the server allows and was ended: "
        f"{_ROLLED_BACK}",
    ),
    # The server is going away or cannot take the connection now.
    Fault(
        "57P01",
        BackendUnavailableError,
        True,
        True,
        "the server ended the connection (shutting down, or an administrator's command)",
    ),
    Fault("57P02", BackendUnavailableError, True, True, "the server crashed"),
    Fault("57P03", BackendUnavailableError, True, False, "the server is starting up or recovering"),
    Fault("53300", BackendUnavailableError, True, False, "the server has no free connection slots"),
    Fault("53", BackendUnavailableError, True, False, "the server ran out of resources"),
    Fault("08", BackendUnavailableError, True, True, "the connection failed"),
    # Configuration: retrying cannot help.
    Fault("28", ConfigurationError, False, False, "the server refused the credentials"),
    Fault("3D000", ConfigurationError, False, False, "the database does not exist"),
    Fault("42501", ConfigurationError, False, False, "the user lacks a privilege"),
    # History refused.
    Fault("23", IntegrityError, False, False, "the database refused a write as unsafe"),
)

_BY_STATE = {fault.sqlstate: fault for fault in FAULTS}

# libpq refuses a bad connection option before it talks to any server; these are its words.
_BAD_OPTION = re.compile(
    r'invalid (?:\w+ )?value|invalid connection option|invalid URI|missing "="|'
    r"unterminated quoted string|invalid (?:integer|sslmode|channel_binding|gssencmode)",
    re.IGNORECASE,
)


def classify(exc: psycopg.Error) -> Fault | None:
    """The row of :data:`FAULTS` for ``exc``'s SQLSTATE, the most specific match, if any."""
    state = getattr(exc, "sqlstate", None)
    if not state:
        return None
    return _BY_STATE.get(state) or _BY_STATE.get(state[:2])


def translate(url: str, exc: psycopg.Error, *, connecting: bool = False) -> EventkeepError:
    """The eventkeep error for a psycopg error on the store at ``url``."""
    text = first_line(exc)
    fault = classify(exc)
    if fault is not None:
        return _build(fault, f"{url}: {fault.meaning} ({text})")
    if connecting and _BAD_OPTION.search(text):
        return ConfigurationError(
            f"{url}: {text} (options that are not eventkeep's own go to libpq as connection "
            "parameters)"
        )
    if isinstance(exc, psycopg.OperationalError):
        if connecting:
            return BackendUnavailableError(
                f"{url}: could not connect to the server ({text}); nothing was sent",
                retryable=True,
            )
        return connection_lost(url, text)
    if isinstance(exc, psycopg.ProgrammingError | psycopg.InterfaceError) and not getattr(
        exc, "sqlstate", None
    ):
        return ConfigurationError(
            f"{url}: {text} (options that are not eventkeep's own go to libpq as connection "
            "parameters)"
        )
    return BackendUnavailableError(f"{url}: {text}")


def connection_lost(url: str, text: str) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"{url}: the database connection failed or was lost ({text})" + _MAYBE_STORED,
        retryable=True,
        outcome_unknown=True,
    )


_MAYBE_STORED = (
    ". A write interrupted this way may or may not have been stored; retrying it with the same "
    "event ids is safe (appends are idempotent)"
)


def _build(fault: Fault, message: str) -> EventkeepError:
    if fault.error is BackendUnavailableError:
        if fault.outcome_unknown:
            message += _MAYBE_STORED
        return BackendUnavailableError(
            message, retryable=fault.retryable, outcome_unknown=fault.outcome_unknown
        )
    return fault.error(message)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
