"""Table and view names of SQL read models, checked and quoted before they reach SQL.

Names come from a projection class (checked when it is defined) and from projection records
stored in the database (read back by reset, rebuild and drop): both go through
:func:`quoted_table`, so a record whose table list was tampered with (``"x; CREATE TABLE
pwned (i int); --"``) is refused, never executed.
"""

from __future__ import annotations

import re
from typing import Any

from eventkeep.errors import EventkeepError, IntegrityError

__all__ = ["MAX_TABLE_NAME", "check_table_name", "quoted_table"]

MAX_TABLE_NAME = 48
"""Longest table name: PostgreSQL keeps 63 bytes of an identifier, and a generation suffix
(``__g<N>``) is added to it."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_table_name(name: Any, *, what: str, error: type[EventkeepError] = IntegrityError) -> str:
    """``name`` if it is a plain SQL identifier of at most MAX_TABLE_NAME characters."""
    if not isinstance(name, str) or len(name) > MAX_TABLE_NAME or not _IDENTIFIER.match(name):
        raise error(
            f"{what}: {name!r} is not a table name (letters, digits and _, starting with a "
            f"letter or _, at most {MAX_TABLE_NAME} characters); it is not put into SQL"
        )
    return name


def quoted_table(name: Any, generation: int | None = None, *, what: str = "table") -> str:
    """The quoted identifier of table ``name`` (of one generation: ``name__g<N>``).

    Lower-cased inside the quotes: PostgreSQL folds unquoted names to lower case and SQLite
    compares names without case, so this names the same table the projection's own unquoted
    SQL does, on both, and reserved words (``order``) work too.
    """
    check_table_name(name, what=what)
    if generation is not None and (
        not isinstance(generation, int) or isinstance(generation, bool) or generation < 0
    ):
        raise IntegrityError(f"{what}: generation {generation!r} is not an int >= 0")
    full = name if generation is None else f"{name}__g{generation}"
    return f'"{full.lower()}"'
