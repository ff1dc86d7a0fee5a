"""Bad input and failures: a one-line ``Error: ...`` on stderr, a documented exit code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from eventkeep import cli as cli_package
from eventkeep.cli import main

Invoke = Callable[..., Result]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{bad"], "Error: DATA_JSON is not valid JSON: Expecting property name"),
        (["[1, 2]"], "Error: DATA_JSON must be a JSON object ({...}), got list"),
        (['"text"'], "Error: DATA_JSON must be a JSON object ({...}), got str"),
        (['{"x": NaN}'], "Error: DATA_JSON is not valid JSON: NaN is not valid JSON"),
        (["{}", "--metadata", "nope"], "Error: --metadata is not valid JSON"),
        (["{}", "--metadata", "[]"], "Error: --metadata must be a JSON object"),
        (['{"x": 1e999}'], "Error: event 'T': data['x'] is inf, which JSON cannot represent"),
    ],
)
def test_bad_json_gets_a_clear_one_line_message_and_exit_2(
    cli: Invoke, args: list[str], message: str
) -> None:
    result = cli("append", "s", "T", *args, expect=2)
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_bad_json_on_stdin_names_stdin(cli: Invoke) -> None:
    result = cli("append", "s", "T", "-", input="{oops", expect=2)
    assert result.stderr.startswith("Error: the event data on stdin is not valid JSON")


@pytest.mark.parametrize(
    ("stream", "event_type", "message"),
    [
        (" padded", "T", "Error: stream id ' padded' has leading or trailing whitespace"),
        ("s", "bad\ttype", "Error: event type 'bad\\ttype' contains the control character"),
        ("x" * 300, "T", "Error: stream id is 300 characters long; the limit is 255"),
    ],
)
def test_bad_stream_ids_and_types_are_refused_with_exit_2(
    cli: Invoke, stream: str, event_type: str, message: str
) -> None:
    result = cli("append", stream, event_type, expect=2)
    assert result.stderr.startswith(message), result.stderr


def test_an_event_above_the_size_limit_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'small.db'}?max_event_bytes=64"
    result = runner.invoke(
        main, ["--store", url, "append", "s", "Big", '{"x": "' + "y" * 80 + '"}']
    )
    assert result.exit_code == 2
    assert "the limit is 64 (max_event_bytes)" in result.stderr


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--expected-version", "later", "'later' is not one of any, no_stream, stream_exists"),
        ("--expected-version", "-1", "'-1' is negative"),
        ("--event-id", "not-a-uuid", "'not-a-uuid' is not a valid UUID"),
    ],
)
def test_bad_options_are_usage_errors(cli: Invoke, option: str, value: str, message: str) -> None:
    result = cli("append", "s", "T", "{}", option, value, expect=2)
    assert message in result.stderr


def test_a_missing_sqlite_file_is_not_created_by_reading_commands(
    runner: CliRunner, tmp_path: Path
) -> None:
    missing = tmp_path / "typo.db"
    for command in (["read", "s"], ["log"], ["streams"], ["stats"], ["verify"]):
        result = runner.invoke(main, ["--store", f"sqlite:///{missing}", *command])
        assert result.exit_code == 4, result.output
        assert result.stderr.startswith(f"Error: no event store at sqlite:///{missing}")
    assert not missing.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nonsense", "Error: store URL must look like memory://"),
        ("mysql://localhost/db", "Error: unknown store URL scheme 'mysql'"),
        ("sqlite://", "Error: SQLite URLs are sqlite:///relative.db"),
        ("sqlite:///x.db?synchronous=SOMETIMES", "Error: synchronous must be one of"),
        ("sqlite:///x.db?colour=blue", "Error: unknown store option(s) colour"),
    ],
)
def test_a_bad_store_url_is_a_usage_error(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["--store", url, "append", "s", "T"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message), result.stderr


def test_a_file_that_is_not_a_database_is_a_store_failure(
    runner: CliRunner, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    result = runner.invoke(main, ["--store", f"sqlite:///{junk}", "stats"])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_a_command_missing_an_optional_dependency_fails_alone_with_an_install_hint(
    runner: CliRunner, cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "eventkeep_fake_pg_command.py").write_text(
        "import eventkeep_not_installed_driver\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(main.lazy_commands, "pgtool", "eventkeep_fake_pg_command:pgtool")
    monkeypatch.setitem(cli_package.EXTRAS, "eventkeep_not_installed_driver", "postgres")
    monkeypatch.setattr(main, "_loaded", {})

    result = cli("pgtool", "--anything", "x", expect=2)
    assert result.stderr == (
        "Error: eventkeep pgtool needs the Python package 'eventkeep_not_installed_driver': "
        "pip install 'eventkeep[postgres]'\n"
    )
    assert "pgtool" in cli("--help").stdout
    cli("append", "s", "StillWorks")
    cli("read", "s")


def test_a_registered_command_whose_module_is_absent_says_so(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setitem(main.lazy_commands, "later", "eventkeep.cli.not_written_yet:later")
    monkeypatch.setattr(main, "_loaded", {})
    assert "later" not in cli("--help").stdout
    result = cli("later", expect=2)
    assert "eventkeep later is not part of this installation" in result.stderr


def test_an_unknown_command_is_a_usage_error(cli: Invoke) -> None:
    assert "No such command 'frobnicate'" in cli("frobnicate", expect=2).stderr


@pytest.mark.parametrize("where", ["no-such-dir/x.db", "x.db"])
@pytest.mark.parametrize("command", [["stats"], ["append", "s", "T"]])
def test_a_bad_option_is_reported_before_a_missing_file_or_directory_with_the_url_given(
    runner: CliRunner, tmp_path: Path, where: str, command: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / where}?colour=blue"
    result = runner.invoke(main, ["--store", url, *command])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: unknown store option(s) colour for '{url}'")
    assert not (tmp_path / where).exists()
