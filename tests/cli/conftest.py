"""Fixtures for the CLI tests: a click test runner against a real SQLite file in tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from eventkeep.cli import main

Invoke = Callable[..., Result]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "80", "EVENTKEEP_STORE": None})


@pytest.fixture
def cli(runner: CliRunner, db_url: str) -> Invoke:
    """Run ``eventkeep --store <tmp db> ARGS...``; pass ``expect=N`` for a non-zero exit."""

    def invoke(*args: str, expect: int = 0, input: str | None = None) -> Result:
        result = runner.invoke(main, ["--store", db_url, *args], input=input)
        assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
        assert "Traceback" not in result.output
        return result

    return invoke
