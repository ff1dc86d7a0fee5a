"""The README's examples are run, so they cannot drift from the code.

- The ``python`` blocks run in order as one script, in a fresh interpreter (their event classes
  must not meet other tests' classes in the type registry) and an empty working directory.
- The ``console`` blocks' ``$ eventkeep ...`` lines run through the CLI in an empty working
  directory (so on the default store); a trailing ``# exits N`` states a non-zero exit code, and
  the output lines shown under a command must match its output (``…`` ends a prefix).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventkeep.cli import main

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


def test_the_python_examples_run(tmp_path: Path) -> None:
    blocks = _blocks("python")
    assert len(blocks) >= 2
    script = tmp_path / "readme_examples.py"
    script.write_text("\n\n".join(blocks), "utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "(1, 2) (1, 2)" in done.stdout
    assert "stream 'account-42': expected version 2, actual version 3" in done.stdout


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
