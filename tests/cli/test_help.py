"""Help texts: every command shows an example; the group lists commands, aliases and exit codes."""

from __future__ import annotations

import importlib.util

import click
import pytest
from click.testing import CliRunner

import eventkeep
from eventkeep.cli import COMMANDS, UnavailableCommand, main

OURS = ["append", "read", "read-all", "log", "streams", "stats", "verify", "anchor", "anchor-key"]


@pytest.mark.parametrize("command", OURS)
def test_every_command_has_an_example_in_its_help(runner: CliRunner, command: str) -> None:
    result = runner.invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout
    assert all(len(line) <= 100 for line in result.stdout.splitlines())


def test_the_group_help_lists_commands_and_exit_codes(runner: CliRunner) -> None:
    out = runner.invoke(main, ["--help"]).stdout
    for command in ["append", "read", "read-all", "streams", "stats", "verify"]:
        assert f"  {command} " in out
    assert "alias: log" in out
    assert "EVENTKEEP_STORE" in out
    assert eventkeep.DEFAULT_STORE_URL in out
    assert "3 concurrency conflict" in out


def test_version_prints_the_package_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.stdout == f"eventkeep, version {eventkeep.__version__}\n"


def test_every_registered_command_module_that_exists_loads_a_click_command() -> None:
    ctx = click.Context(main)
    for name, target in COMMANDS.items():
        if importlib.util.find_spec(target.partition(":")[0]) is None:
            continue
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command), name
        assert not isinstance(command, UnavailableCommand), (name, command.help)
