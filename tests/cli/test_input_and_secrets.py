"""Bad input, odd terminals and credentials on the command line: one line, an exit code, no
traceback, nothing stored, and never a password in the output."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventkeep
from eventkeep import open_store
from eventkeep.cli import main
from eventkeep.cli._common import from_library_error

Invoke = Any


_SRC = str(Path(eventkeep.__file__).resolve().parents[1])


def _run(
    *args: str, cwd: Path, input: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if k != "EVENTKEEP_STORE"}
    return subprocess.run(
        [sys.executable, "-m", "eventkeep", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        timeout=120,
        env={**base, "COLUMNS": "80", "PYTHONPATH": _SRC, **(env or {})},
        check=False,
    )


def _one_line_error(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace")
    assert "Traceback" not in text
    assert text.startswith("Error: "), text
    assert text.count("\n") == 1, text
    return text


def test_store_may_come_after_the_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'after.db'}"
    runner = CliRunner(env={"EVENTKEEP_STORE": None})
    appended = runner.invoke(main, ["append", "s-1", "T", "{}", "--store", url])
    assert appended.exit_code == 0, appended.output
    read = runner.invoke(main, ["read", "s-1", f"--store={url}", "--json"])
    assert read.exit_code == 0, read.output
    assert [e["type"] for e in json.loads(read.output)] == ["T"]
    nested = runner.invoke(main, ["projections", "status", "--store", url])
    assert "No such option" not in nested.output
    as_data = runner.invoke(main, ["--store", url, "append", "s-2", "T", "--", "--store"])
    assert as_data.exit_code == 2  # after --, "--store" is DATA_JSON (not JSON), never an option


def test_output_the_terminal_cannot_encode_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    store = {"EVENTKEEP_STORE": f"sqlite:///{tmp_path / 'c.db'}"}
    assert _run("append", "café-1", "T", '{"a": "é"}', cwd=tmp_path, env=store).returncode == 0
    ascii_out = _run("read", "café-1", cwd=tmp_path, env={**store, "PYTHONIOENCODING": "ascii"})
    assert ascii_out.returncode == 1
    assert "PYTHONIOENCODING=utf-8" in _one_line_error(ascii_out.stderr)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_on_stdout_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'f.db'}"
    assert _run("--store", store, "append", "s", "T", cwd=tmp_path).returncode == 0
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "eventkeep", "--store", store, "read", "s"],
            env={**os.environ, "PYTHONPATH": _SRC},
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1
    assert "No space left on device" in _one_line_error(done.stderr)


def test_non_utf8_and_deeply_nested_stdin_are_refused(tmp_path: Path) -> None:
    store = {"EVENTKEEP_STORE": f"sqlite:///{tmp_path / 'n.db'}"}
    latin1 = _run("append", "s-1", "T", "-", cwd=tmp_path, input=b'{"a":"caf\xe9"}', env=store)
    assert latin1.returncode == 2
    assert "not UTF-8" in _one_line_error(latin1.stderr)
    brackets = _run("append", "s-1", "T", "-", cwd=tmp_path, input=b"[" * (40 * 2**20), env=store)
    assert brackets.returncode == 2
    _one_line_error(brackets.stderr)
    twice = _run("append", "s-1", "T", '{"a": 1, "b": {"c": 2, "c": 3}}', cwd=tmp_path, env=store)
    assert twice.returncode == 2
    assert "the key 'c' appears twice" in _one_line_error(twice.stderr)
    deep = '{"x": ' + "[" * 1000 + "]" * 1000 + "}"
    nested = _run("append", "s-1", "T", deep, cwd=tmp_path, env=store)
    assert nested.returncode == 2
    assert "nested too deeply" in _one_line_error(nested.stderr)
    assert (
        not (tmp_path / "n.db").exists()
        or open_store(store["EVENTKEEP_STORE"]).head_position() == 0
    )


@pytest.mark.parametrize(
    ("url", "expect", "says"),
    [
        ("sqlite://cart.db", 2, "sqlite:///cart.db"),
        ("sqlite:///no/such/dir/cart.db", 2, "the directory no/such/dir does not exist"),
        ("sqlite:///c.db?busy_timeout=nan", 2, "busy_timeout"),
        ("sqlite:///c.db?busy_timeout=inf", 2, "busy_timeout"),
        ("postgresql://u@127.0.0.1:9/db?connect_timeout=nan", 2, "connect_timeout"),
        ("postgresql://u@127.0.0.1:9/db?lock_timeout=inf", 2, "lock_timeout"),
    ],
)
def test_a_bad_store_url_says_what_is_wrong(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    expect: int,
    says: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["append", "s", "T"], ["read", "s"], ["stats"]):
        result = runner.invoke(main, ["--store", url, *args])
        assert result.exit_code == expect, (args, result.output)
        assert says in result.output
        assert "art.db does not exist" not in result.output
        assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_interrupted_write_note_is_only_for_writes() -> None:
    error = eventkeep.BackendUnavailableError(
        "postgresql://h/db: the database connection failed or was lost (EOF). A write "
        "interrupted this way may or may not have been stored; retrying it with the same event "
        "ids is safe (appends are idempotent)",
        outcome_unknown=True,
    )
    assert "may or may not" in from_library_error(error, writes=True).message
    read = from_library_error(error, writes=False).message
    assert "may or may not" not in read
    assert read.endswith("this command only reads, nothing was written")


def test_import_checks_untyped_appends_against_registered_classes(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"cli_import_events_{os.getpid()}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            """
            from decimal import Decimal
            import eventkeep

            class ItemAddedForCli(eventkeep.Event):
                __event_type__ = "cli.ItemAdded"
                sku: str
                price: Decimal
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    bad = cli(
        "--import",
        module,
        "append",
        "cart-1",
        "cli.ItemAdded",
        '{"sku": 5, "price": "1"}',
        expect=2,
    )
    assert "does not fit ItemAddedForCli" in bad.output
    assert "$.sku" in bad.output
    missing = cli("--import", module, "append", "cart-1", "cli.ItemAdded", '{"sku": "a"}', expect=2)
    assert "price" in missing.output
    cli("read", "cart-1", expect=4)  # nothing was stored
    cli("--import", module, "append", "cart-1", "cli.ItemAdded", '{"sku": "a", "price": "1.50"}')
    [event] = json.loads(cli("read", "cart-1", "--json").output)
    assert event["data"] == {"sku": "a", "price": "1.50"}
    failing = cli("--import", "no_such_module_for_eventkeep", "stats", expect=2)
    assert "--import no_such_module_for_eventkeep" in failing.output
    assert "--import" in cli("append", "--help").output


SECRET = "S3cretPw"

MALFORMED: list[str] = [
    f"postgresql://app:{SECRET}%zz@127.0.0.1:9/db",
    f"postgresql://app:{SECRET}@127.0.0.1:9/db",
    f"postgres://app:{SECRET}@127.0.0.1:notaport/db",
    f"postgresql://app:{SECRET}/db",
    f"postgresql://app:{SECRET}@/db?host=/nonexistent/socket/dir",
    f"postgresql://app:{SECRET}@127.0.0.1:9/db?sslmode=bogus",
    f"postgresql://app:{SECRET}@127.0.0.1:9/db?schema=Bad-Schema",
    f"postgresql://app:{SECRET}@127.0.0.1:9/db?connect_timeout=soon",
    f"postgresql://app:{SECRET}@127.0.0.1:9/db?unknown_libpq_option=1",
    f"postgresql://app@127.0.0.1:9/db?password={SECRET}&port=x",
    f"postgresql://app:{SECRET}@[::1/db",
    f"postgresql://app:p@ss{SECRET}@127.0.0.1:9/db",
    f"postgress://app:{SECRET}@127.0.0.1:9/db",
    f"PostgreSQL+psycopg://app:{SECRET}@127.0.0.1:9/db",
    f"mysql://app:{SECRET}@127.0.0.1/db",
    f"sqlite://app:{SECRET}@host/x.db",
    f"memory://app:{SECRET}@x?max_event_bytes=lots",
    f"memory://app:{SECRET}@x",
    f"host=127.0.0.1 port=9 password={SECRET} dbname=db",
    f"host=127.0.0.1 password='{SECRET} x' user=app",
    f"password={SECRET}",
    f"//app:{SECRET}@127.0.0.1/db",
]


def _texts(exc: BaseException) -> list[str]:
    seen: list[str] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None:
            continue
        seen.extend([str(item), repr(item)])
        todo.extend([item.__cause__, item.__context__])
        if len(seen) > 50:
            break
    return seen


@pytest.mark.parametrize("url", MALFORMED)
def test_no_credential_appears_in_any_error_or_output(
    url: str, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        store = open_store(url, connect_timeout=2)
    except eventkeep.EventkeepError as exc:
        for text in _texts(exc):
            assert SECRET not in text
    else:  # memory:// opens: its repr and url hide the password too
        assert SECRET not in repr(store)
        assert SECRET not in store.url
        store.close()
    for args in (["stats"], ["read", "s"], ["append", "s", "T"]):
        result = runner.invoke(main, ["--store", url, *args])
        assert SECRET not in result.output
        assert "Traceback" not in result.output
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            for text in _texts(result.exception):
                assert SECRET not in text


def _schema_exists(server: Any, schema: str) -> bool:
    with server.admin() as conn:
        row = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
    return row is not None


def test_read_commands_never_create_a_postgresql_store(
    pg_server: Any, request: pytest.FixtureRequest, runner: CliRunner
) -> None:
    from pg_fixtures import new_schema_name, with_schema

    schema = new_schema_name()
    request.addfinalizer(lambda: pg_server.drop_schema(schema))
    url = with_schema(pg_server.url, schema)
    for args in (["read", "s"], ["read-all"], ["streams"], ["stats"], ["projections", "status"]):
        result = runner.invoke(main, ["--store", url, *args])
        assert result.exit_code == 4, (args, result.output)
        assert f"schema '{schema}' holds no eventkeep store" in result.output
        assert not _schema_exists(pg_server, schema)
    appended = runner.invoke(main, ["--store", url, "append", "s", "T"])
    assert appended.exit_code == 0, appended.output
    assert runner.invoke(main, ["--store", url, "read", "s"]).exit_code == 0


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
_stdin = (
    _json.map(lambda v: json.dumps(v).encode())
    | st.dictionaries(st.text(max_size=3), _json, max_size=3).map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=12)
    | st.sampled_from(
        [b'{"a": NaN}', b'{"a": 1e999}', b'{"a": 1, "a": 2}', b"[" * 5000, b'{"a": "\\ud800"}']
    )
    | st.integers(120, 135).map(lambda n: b'{"d": ' + b"[" * n + b"]" * n + b"}")
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=_stdin)
def test_any_stdin_is_stored_exactly_or_refused_in_one_line(
    runner: CliRunner, tmp_path: Path, document: bytes
) -> None:
    """80 examples (max_examples=80): JSON documents of every shape, malformed and non-UTF-8
    bytes, NaN, duplicate keys, lone surrogates and nesting near the limit, on stdin."""
    url = f"sqlite:///{tmp_path / 'prop.db'}"
    stream = f"p-{next(_examples)}"
    result = runner.invoke(main, ["--store", url, "append", stream, "T", "-"], input=document)
    assert "Traceback" not in result.output
    read = runner.invoke(main, ["--store", url, "read", stream, "--json"])
    if result.exit_code == 0:
        [event] = json.loads(read.output)
        assert event["data"] == json.loads(document)
        return
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.output.startswith("Error: ")
    assert result.output.count("\n") == 1
    assert read.exit_code == 4  # nothing stored


_examples = itertools.count()
