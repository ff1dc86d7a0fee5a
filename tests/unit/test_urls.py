"""``open_store(url)``: URL forms, options, and clear errors for bad URLs."""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventkeep import (
    DEFAULT_STORE_URL,
    ConfigurationError,
    EventkeepError,
    EventTooLargeError,
    RawEvent,
    open_store,
)
from eventkeep.backends.memory import MemoryStore
from eventkeep.backends.sqlite import SQLiteStore


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_default_url_is_an_sqlite_file_in_the_working_directory() -> None:
    assert DEFAULT_STORE_URL == "sqlite:///eventkeep.db"


@pytest.mark.parametrize("url", ["memory://", "MEMORY://", "Memory://"])
def test_memory_urls_open_a_fresh_memory_store(url: str) -> None:
    first, second = open_store(url), open_store(url)
    assert isinstance(first, MemoryStore)
    first.append("s", [RawEvent("unit.T", {})])
    assert second.head_position() == 0


def test_a_relative_sqlite_url_opens_a_file_relative_to_the_working_directory(
    in_tmp: Path,
) -> None:
    with open_store("sqlite:///relative.db") as store:
        assert isinstance(store, SQLiteStore)
        store.append("s", [RawEvent("unit.T", {})])
        assert store.url == "sqlite:///relative.db"
    assert (in_tmp / "relative.db").is_file()


def test_a_relative_sqlite_url_may_name_a_subdirectory(in_tmp: Path) -> None:
    (in_tmp / "data").mkdir()
    with open_store("sqlite:///data/app.db"):
        pass
    assert (in_tmp / "data" / "app.db").is_file()


def test_an_absolute_sqlite_url_has_four_slashes(tmp_path: Path, in_tmp: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = elsewhere / "absolute.db"
    url = f"sqlite:///{path}"
    assert url.startswith("sqlite:////")
    with open_store(url) as store:
        assert isinstance(store, SQLiteStore)
        assert store.path == str(path)
        store.append("s", [RawEvent("unit.T", {})])
    with open_store(url) as again:
        assert again.stream_version("s") == 1


def test_options_come_from_the_query_string(in_tmp: Path) -> None:
    with open_store(
        "sqlite:///q.db?synchronous=normal&busy_timeout=2.5&max_event_bytes=64"
    ) as store:
        assert isinstance(store, SQLiteStore)
        assert store.synchronous == "NORMAL"
        with pytest.raises(EventTooLargeError):
            store.append("s", [RawEvent("unit.T", {"text": "x" * 64})])


def test_keyword_options_override_the_query_string(in_tmp: Path) -> None:
    store = open_store("memory://?max_event_bytes=10", max_event_bytes=1000)
    store.append("s", [RawEvent("unit.T", {"text": "x" * 100})])
    with open_store("sqlite:///k.db?synchronous=OFF", synchronous="FULL") as sqlite_store:
        assert isinstance(sqlite_store, SQLiteStore)
        assert sqlite_store.synchronous == "FULL"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "memory",
        "eventkeep.db",
        "ftp://host/file",
        "mysql://host/db",
        "sqlite://relative.db",
        "sqlite:///",
        "memory://?max_event_bytes=lots",
        "memory://?max_event_bytes=",
        "sqlite:///x.db?busy_timeout=soon",
        "memory://?unknown_option=1",
        "sqlite:///x.db?synchronous=SOMETIMES",
        "sqlite:///x.db?busy_timeout=-1",
        "sqlite:///x.db?busy_timeout=nan",
        "sqlite:///x.db?busy_timeout=inf",
        "sqlite:///x.db?busy_timeout=-inf",
        "sqlite:///x.db?busy_timeout=1e400",
        "sqlite:///x.db?file_mode=0644x",
        "sqlite:///x.db?file_mode=0400",
        "sqlite:///x.db?file_mode=01777",
        "sqlite:///x.db?file_mode=",
        "postgresql://u@127.0.0.1:9/db?connect_timeout=nan",
        "postgresql://u@127.0.0.1:9/db?lock_timeout=inf",
        "postgresql://u@127.0.0.1:9/db?create=no",
    ],
)
def test_a_bad_url_raises_configuration_error(url: str, in_tmp: Path) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)
    assert list(in_tmp.iterdir()) == []


@pytest.mark.parametrize("url", [None, 42, b"memory://"])
def test_a_url_that_is_not_a_str_raises_configuration_error(url: Any) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_an_unknown_keyword_option_raises_configuration_error_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="pool_size"):
        open_store("memory://", pool_size=3)


def test_a_max_event_bytes_below_one_is_refused() -> None:
    with pytest.raises(EventkeepError):
        open_store("memory://?max_event_bytes=0")


def test_a_sqlite_file_in_a_missing_directory_names_the_directory(in_tmp: Path) -> None:
    with pytest.raises(ConfigurationError, match="the directory no/such/dir does not exist"):
        open_store("sqlite:///no/such/dir/x.db")
    assert list(in_tmp.iterdir()) == []


def test_a_file_that_is_not_a_database_is_a_translated_error(in_tmp: Path) -> None:
    (in_tmp / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(EventkeepError):
        open_store("sqlite:///junk.db")


# -- PostgreSQL without its pieces ---------------------------------------------------------------

_PG = "eventkeep.backends.postgres"


@pytest.fixture
def forget_postgres_backend() -> Iterator[None]:
    """Unload the PostgreSQL backend so the next import runs afresh; restore it afterwards."""
    saved = {name: mod for name, mod in sys.modules.items() if name.startswith(_PG)}
    for name in saved:
        del sys.modules[name]
    try:
        yield
    finally:
        for name in [n for n in sys.modules if n.startswith(_PG)]:
            del sys.modules[name]
        sys.modules.update(saved)


class _Refuse(importlib.abc.MetaPathFinder):
    """Makes importing the given top-level modules fail as if they were not installed."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
@pytest.mark.usefixtures("forget_postgres_backend")
def test_a_postgresql_url_without_psycopg_says_which_extra_to_install(
    scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in ("psycopg", "psycopg_pool")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_Refuse("psycopg", "psycopg_pool"), *sys.meta_path])
    with pytest.raises(ConfigurationError, match=r"pip install 'eventkeep\[postgres\]'"):
        open_store(f"{scheme}://user@localhost/db")


@pytest.mark.usefixtures("forget_postgres_backend")
def test_a_postgresql_url_without_the_backend_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, _PG, None)  # as if this eventkeep shipped no such module
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        open_store("postgresql://user@localhost/db")


@pytest.mark.parametrize("registry", ["default", {}, 42])
def test_a_registry_that_is_not_a_type_registry_is_refused(registry: Any) -> None:
    with pytest.raises(ConfigurationError, match="TypeRegistry"):
        open_store("memory://", registry=registry)
