"""The README's examples are run, so they cannot drift from the code.

- The ``python`` blocks run in order as one script, in a fresh interpreter (their event classes
  must not meet other tests' classes in the type registry) and an empty working directory,
  twice: a reader may well run them again.
- The command table lists every command of ``eventkeep --help`` and of each group's ``--help``.
- The ``console`` blocks' ``$ eventkeep ...`` lines run through the CLI in an empty working
  directory (so on the default store); a trailing ``# exits N`` states a non-zero exit code, and
  the output lines shown under a command must match its output (``…`` ends a prefix).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from eventkeep.cli import ALIASES, main

README = Path(__file__).resolve().parent.parent / "README.md"

_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(README.read_text("utf-8")) if lang == language]


def test_the_readme_has_the_two_set_up_commands() -> None:
    commands = [line for block in _blocks("bash") for line in block.splitlines()]
    assert "pip install -e . && eventkeep demo" in commands
    assert "./scripts/check" in commands
    ci = (README.parent / ".ci" / "run").read_text("utf-8").splitlines()
    assert ci[-1] == "./scripts/check"


def test_the_python_examples_run_twice_in_a_row(tmp_path: Path) -> None:
    """Run twice in the same working directory, as a reader trying them out would: the second
    run must not meet the first one's files (a leftover bank.db would be a concurrency conflict).
    """
    blocks = _blocks("python")
    assert len(blocks) >= 2
    script = tmp_path / "readme_examples.py"
    script.write_text("\n\n".join(blocks), "utf-8")
    workdir = tmp_path / "work"
    temp = tmp_path / "tmp"
    workdir.mkdir()
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    for run in (1, 2):
        done = subprocess.run(
            [sys.executable, "-W", "error", str(script)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (run, done.stderr)
        assert "(1, 2) (1, 2)" in done.stdout
        assert "stream 'account-42': expected version 2, actual version 3" in done.stdout
        assert "ada holds 70.00, cannot withdraw 500.00" in done.stdout
        assert list(workdir.iterdir()) == [], run  # nothing written where it runs
        assert list(temp.iterdir()) == [], run  # its temporary folder is removed


def test_the_readme_states_the_python_version_up_front() -> None:
    text = README.read_text("utf-8")
    quick_start = text.index("## Quick start")
    assert "Python 3.11 or newer" in text[: text.index("```", quick_start)]


def test_the_postgres_install_line_is_the_same_everywhere() -> None:
    files = [README, *sorted((README.parent / "docs").glob("*.md"))]
    mentioned = [path for path in files if "[postgres]" in path.read_text("utf-8")]
    assert README in mentioned
    assert README.parent / "docs" / "postgres.md" in mentioned
    for path in mentioned:
        text = " ".join(path.read_text("utf-8").split())  # line breaks are spaces
        assert "`pip install -e '.[postgres]'` from a checkout" in text, path.name
        assert "`pip install 'eventkeep[postgres]'` from the package index" in text, path.name
        installs = re.findall(r"pip install [^`]*\[postgres\][^`]*", text)
        assert set(installs) <= {
            "pip install -e '.[postgres]'",
            "pip install 'eventkeep[postgres]'",
        }


def _cli_table() -> dict[str, str]:
    """The README's command table: command name (with subcommand) -> its row's text."""
    text = README.read_text("utf-8")
    table = text[text.index("| Command | What it does |") :].split("\n\n", 1)[0]
    rows: dict[str, str] = {}
    for line in table.splitlines()[2:]:
        cell = re.match(r"\| `([^`]+)`", line)
        assert cell, line
        words = cell.group(1).split()
        groups = {"projections", "snapshots", "tokens"}
        name = " ".join(words[:2]) if words[0] in groups else words[0]
        rows[name] = line
    return rows


def _cli_commands() -> dict[str, click.Command]:
    """Every command of ``eventkeep --help`` and of each group's ``--help``."""
    ctx = click.Context(main)
    commands: dict[str, click.Command] = {}
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                subcommand = command.get_command(ctx, sub)
                assert subcommand is not None, (name, sub)
                commands[f"{name} {sub}"] = subcommand
        else:
            commands[name] = command
    return commands


def test_the_command_table_lists_every_command_and_only_real_options() -> None:
    rows = _cli_table()
    commands = _cli_commands()
    assert sorted(rows) == sorted(commands)
    global_options = {opt for param in main.params for opt in param.opts}
    for name, row in rows.items():
        options = {opt for param in commands[name].params for opt in param.opts}
        for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", row):
            assert option in options | global_options, (name, option)
    for alias, target in ALIASES.items():
        assert f"alias `{alias}`" in rows[target]


def _console_examples() -> list[tuple[str, list[str]]]:
    """(command line, the output lines shown under it) for each ``$ `` line."""
    examples: list[tuple[str, list[str]]] = []
    for block in _blocks("console"):
        for line in block.splitlines():
            if line.startswith("$ "):
                examples.append((line[2:], []))
            elif examples and line.strip():
                examples[-1][1].append(line)
    return examples


def test_the_command_line_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner(env={"EVENTKEEP_STORE": None, "COLUMNS": "80"})
    examples = _console_examples()
    assert len(examples) >= 8
    for command_line, shown in examples:
        command, _, comment = command_line.partition("  # ")
        expected_code = int(comment.removeprefix("exits ")) if comment else 0
        stdin = None
        piped = re.fullmatch(r"echo (.+?) \| (eventkeep .*)", command.strip())
        if piped:
            stdin, command = shlex.split(piped.group(1))[0], piped.group(2)
        args = shlex.split(command)
        assert args[0] == "eventkeep", command_line
        result = runner.invoke(main, args[1:], input=stdin)
        assert result.exit_code == expected_code, (command_line, result.output)
        output = result.output.splitlines()
        for want, got in zip(shown, output, strict=False):
            if want.endswith("…"):
                assert got.startswith(want[:-1]), (command_line, got)
            else:
                assert got == want, (command_line, got)
        assert len(output) >= len(shown), (command_line, result.output)
