"""Where the CLI looks for the store: --store, then EVENTKEEP_STORE, then ./eventkeep.db."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventkeep.cli import main


def _streams(runner: CliRunner, *args: str, env: dict[str, str | None] | None = None) -> list[str]:
    result = runner.invoke(main, [*args, "streams", "--json"], env=env)
    assert result.exit_code == 0, result.output
    return [s["stream_id"] for s in json.loads(result.stdout)]


def test_the_default_store_is_eventkeep_db_in_the_working_directory(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["append", "here", "Happened"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "eventkeep.db").exists()
    assert _streams(runner) == ["here"]


def test_eventkeep_store_in_the_environment_chooses_the_store(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"EVENTKEEP_STORE": f"sqlite:///{tmp_path / 'from-env.db'}"}
    result = runner.invoke(main, ["append", "env-stream", "Happened"], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-env.db").exists()
    assert not (tmp_path / "eventkeep.db").exists()
    assert _streams(runner, env=env) == ["env-stream"]


def test_the_store_option_wins_over_the_environment(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"EVENTKEEP_STORE": "sqlite:///from-env.db"}
    result = runner.invoke(main, ["--store", "sqlite:///opt.db", "append", "s", "E"], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "opt.db").exists()
    assert not (tmp_path / "from-env.db").exists()


def test_store_options_go_in_the_url_query_string(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fast.db'}?synchronous=NORMAL&busy_timeout=2"
    assert runner.invoke(main, ["--store", url, "append", "s", "E"]).exit_code == 0
    assert _streams(runner, "--store", url) == ["s"]


def test_a_password_in_the_store_url_is_never_printed() -> None:
    from eventkeep.cli._common import display_url

    url = "postgresql://app:s3cret@db.example:5432/events?sslmode=require"
    assert display_url(url) == "postgresql://app:***@db.example:5432/events?sslmode=require"
    assert display_url("sqlite:///x.db") == "sqlite:///x.db"
