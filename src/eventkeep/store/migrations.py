"""Numbered schema migrations shipped as ``NNNN_name.sql`` files inside a backend package."""

from __future__ import annotations

from importlib import resources
from typing import NamedTuple

from eventkeep.errors import ConfigurationError

__all__ = ["Migration", "load_migrations"]


class Migration(NamedTuple):
    version: int
    name: str
    sql: str


def load_migrations(package: str) -> list[Migration]:
    """The migrations in ``package``'s ``migrations`` folder, in version order, gap-free."""
    folder = resources.files(package).joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        if not number.isdigit():
            raise ConfigurationError(f"migration file {entry.name!r} does not start with NNNN_")
        found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    found.sort()
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise ConfigurationError(f"migrations of {package} are not numbered 1..N without gaps")
    return found
