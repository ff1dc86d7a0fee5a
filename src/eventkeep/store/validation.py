"""Checks on user input, shared by every backend so that they all refuse the same things."""

from __future__ import annotations

import re
from typing import Any

from eventkeep.errors import EventkeepError, ValidationError

MAX_NAME_LENGTH = 255
"""Longest stream id or event type name, in characters."""

MAX_COUNT = 2**63 - 1

MAX_SCHEMA_VERSION = 2**31 - 1
"""Schema versions are stored as 32-bit ints on every backend."""
"""Largest version, position or limit: what SQLite INTEGER and PostgreSQL bigint can hold."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_name(value: Any, *, what: str, error: type[EventkeepError] = ValidationError) -> str:
    """Return ``value`` if it is a usable stream id or type name, else raise ``error``."""
    if not isinstance(value, str):
        raise error(f"{what} must be a str, got {type(value).__name__}: {value!r}")
    if not value:
        raise error(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise error(f"{what} is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}")
    bad = _CONTROL.search(value)
    if bad is not None:
        raise error(
            f"{what} {value!r} contains the control character {bad.group()!r} "
            f"at index {bad.start()}"
        )
    if value != value.strip():
        raise error(f"{what} {value!r} has leading or trailing whitespace")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(f"{what} {value!r} is not valid Unicode (a lone surrogate)") from exc
    return value


def check_text(value: Any, *, what: str) -> str:
    """A str filter that is valid Unicode, such as a stream prefix (which may be empty).

    NUL is refused: no stream id or type name holds one (see :func:`check_name`), and
    PostgreSQL cannot take it in a query, so every backend answers the same.
    """
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a str, got {type(value).__name__}: {value!r}")
    if "\x00" in value:
        raise ValidationError(
            f"{what} {value!r} contains NUL (\\x00), which no stream id or type name holds"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{what} {value!r} is not valid Unicode (a lone surrogate)") from exc
    return value


def check_stream_id(value: Any) -> str:
    return check_name(value, what="stream id")


def check_count(value: Any, *, what: str, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
    """An int parameter such as a version or a limit (bools are refused)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{what} must be an int, got {type(value).__name__}: {value!r}")
    if value < minimum:
        raise ValidationError(f"{what} must be >= {minimum}, got {value}")
    if value > maximum:
        limit = " (a signed 64-bit int)" if maximum == MAX_COUNT else ""
        raise ValidationError(f"{what} must be <= {maximum}{limit}, got {value}")
    return value


MAX_SECONDS = 86_400.0 * 24
"""The longest timeout eventkeep takes: 24 days (PostgreSQL takes at most 2**31 ms)."""


def check_seconds(
    value: Any,
    *,
    what: str,
    error: type[EventkeepError] = ValidationError,
    maximum: float = MAX_SECONDS,
) -> float:
    """A finite number of seconds from 0 to ``maximum`` (bools, NaN and infinity are refused)."""
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not 0 <= value <= maximum  # False for NaN
    ):
        raise error(
            f"{what} must be a finite number of seconds from 0 to {maximum:g}, got {value!r}"
        )
    return float(value)


def check_flag(value: Any, *, what: str) -> bool:
    """A bool parameter (1, "no" and other truthy or falsy stand-ins are refused)."""
    if not isinstance(value, bool):
        raise ValidationError(
            f"{what} must be True or False, got {type(value).__name__}: {value!r}"
        )
    return value


def check_optional_count(value: Any, *, what: str, minimum: int = 0) -> int | None:
    return None if value is None else check_count(value, what=what, minimum=minimum)
