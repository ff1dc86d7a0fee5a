"""The ``eventkeep`` command line: a thin layer over the library.

Each command family lives in its own module and is imported only when it runs (or when the help
lists it), so a command whose optional dependency is missing fails alone, with a message saying
what to install, and the others keep working. Adding a command family is one line in
``COMMANDS``: ``"name": "eventkeep.cli.module:attribute"``.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from typing import Any

import click

import eventkeep
from eventkeep.cli._common import EXIT_FAILED, EXIT_USAGE, cli_error, from_library_error

__all__ = ["ALIASES", "COMMANDS", "EXTRAS", "LazyGroup", "UnavailableCommand", "main"]

COMMANDS: dict[str, str] = {
    "append": "eventkeep.cli.append:append",
    "read": "eventkeep.cli.read:read",
    "read-all": "eventkeep.cli.read:read_all",
    "query": "eventkeep.cli.read:query",
    "streams": "eventkeep.cli.info:streams",
    "stats": "eventkeep.cli.info:stats",
    "verify": "eventkeep.cli.verify:verify",
    "anchor": "eventkeep.cli.anchor:anchor",
    "anchor-key": "eventkeep.cli.anchor:anchor_key",
    "demo": "eventkeep.cli.demo:demo",
    "snapshots": "eventkeep.cli.snapshots:snapshots",
    "projections": "eventkeep.cli.projections:projections",
    "export": "eventkeep.cli.moving:export",
    "import": "eventkeep.cli.moving:import_",
    "copy": "eventkeep.cli.moving:copy",
    "backup": "eventkeep.cli.moving:backup",
    "delete": "eventkeep.cli.lifecycle:delete",
    "retention": "eventkeep.cli.lifecycle:retention",
    "compact": "eventkeep.cli.lifecycle:compact",
    "archive": "eventkeep.cli.lifecycle:archive",
    "operations": "eventkeep.cli.lifecycle:operations",
    "forget": "eventkeep.cli.forget:forget",
    "forgotten": "eventkeep.cli.forget:forgotten",
    "serve": "eventkeep.cli.serve:serve",
    "tokens": "eventkeep.cli.tokens:tokens",
}
"""Command name -> ``module:attribute`` of its click command or group."""

ALIASES: dict[str, str] = {"log": "read-all"}

EXTRAS: dict[str, str] = {
    "psycopg": "postgres",
    "psycopg_pool": "postgres",
    "hypothesis": "testing",
    "pytest": "testing",
    "cryptography": "crypto",
    "starlette": "server",
    "uvicorn": "server",
    "opentelemetry": "otel",
}
"""Top-level package -> the eventkeep extra that installs it."""


class LazyGroup(click.Group):
    """A group that imports each command's module on first use."""

    def __init__(
        self,
        *args: Any,
        lazy_commands: Mapping[str, str],
        aliases: Mapping[str, str],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)
        self.aliases = dict(aliases)
        self._loaded: dict[str, click.Command] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(name for name in self.lazy_commands if _module_exists(name, self))
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        name = self.aliases.get(cmd_name, cmd_name)
        command = super().get_command(ctx, name)
        if command is not None or name not in self.lazy_commands:
            return command
        if name not in self._loaded:
            self._loaded[name] = self._load(name)
        return self._loaded[name]

    def _load(self, name: str) -> click.Command:
        module_name, _, attribute = self.lazy_commands[name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            return _unavailable(name, _import_problem(name, module_name, exc))
        command = getattr(module, attribute, None)
        if not isinstance(command, click.Command):
            return _unavailable(
                name, f"eventkeep {name} is broken: {module_name} has no click command {attribute}"
            )
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Accept ``--store URL`` after the command name too: ``eventkeep read s --store URL``
        is ``eventkeep --store URL read s``."""
        return super().parse_args(ctx, _root_options_first(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a full disk or a closed pipe is found here, not at exit
            return result
        except eventkeep.EventkeepError as exc:
            raise from_library_error(exc, writes=ctx.meta.get(WRITES, True)) from exc
        except UnicodeEncodeError as exc:
            _quiet_stdout()
            raise cli_error(
                f"the output holds {exc.object[exc.start : exc.end]!r}, which the output "
                f"encoding ({exc.encoding}) cannot write; set PYTHONIOENCODING=utf-8 or use a "
                "UTF-8 locale",
                EXIT_FAILED,
            ) from exc
        except OSError as exc:
            if exc.errno == errno.EPIPE or exc.errno is None:
                raise
            _quiet_stdout()
            raise cli_error(
                f"could not write the output: {exc.strerror or exc}", EXIT_FAILED
            ) from exc


class _QuietStream:
    """A stream whose flush ignores OSError: what stdout becomes once writing to it failed."""

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._wrapped.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


def _quiet_stdout() -> None:
    """After stdout failed: no second error (or traceback) when Python flushes it at exit."""
    quiet: Any = _QuietStream(sys.stdout)
    sys.stdout = quiet


WRITES = "eventkeep.writes"
"""``ctx.meta`` key: whether the running command may write (set when it opens the store)."""

_ROOT_OPTIONS = ("--store", "--read-url")


def _root_options_first(args: list[str]) -> list[str]:
    """``args`` with the root options found after the command name moved before it."""
    moved: list[str] = []
    rest: list[str] = []
    i = 0
    seen_command = False
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.partition("=")[0]
        if seen_command and name in _ROOT_OPTIONS:
            if "=" in arg:
                moved.append(arg)
            else:
                moved.extend(args[i : i + 2])
                i += 1
        else:
            if not arg.startswith("-"):
                seen_command = True
            elif not seen_command and name in _ROOT_OPTIONS and "=" not in arg:
                rest.extend(args[i : i + 2])  # a root option before the command, with its value
                i += 2
                continue
            rest.append(arg)
        i += 1
    return moved + rest


def _module_exists(name: str, group: LazyGroup) -> bool:
    module_name = group.lazy_commands[name].partition(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except ImportError:
        return False


def _import_problem(name: str, module_name: str, exc: ImportError) -> str:
    missing = getattr(exc, "name", None) or ""
    if isinstance(exc, ModuleNotFoundError) and missing == module_name:
        return f"eventkeep {name} is not part of this installation ({module_name} is missing)"
    top = missing.split(".")[0]
    if isinstance(exc, ModuleNotFoundError) and top in EXTRAS:
        return (
            f"eventkeep {name} needs the Python package {top!r}: "
            f"pip install 'eventkeep[{EXTRAS[top]}]'"
        )
    if isinstance(exc, ModuleNotFoundError) and missing:
        return f"eventkeep {name} needs the Python package {top!r}, which is not installed"
    return f"eventkeep {name} could not be loaded: {exc}"


class UnavailableCommand(click.Command):
    """Stands in for a command that could not be imported; running it explains why."""


def _unavailable(name: str, problem: str) -> click.Command:
    def refuse() -> None:
        raise cli_error(problem, EXIT_USAGE)

    return UnavailableCommand(
        name,
        callback=refuse,
        help=problem,
        short_help=f"(unavailable) {problem}",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    aliases=ALIASES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=(
        "Exit codes: 0 ok, 1 verify found a broken chain (or the store failed), 2 bad input or "
        "usage, 3 concurrency conflict (wrong expected version), 4 stream or store not found."
    ),
)
@click.option(
    "--store",
    "store",
    envvar="EVENTKEEP_STORE",
    default=eventkeep.DEFAULT_STORE_URL,
    show_default=True,
    show_envvar=True,
    metavar="URL",
    help=(
        "The event store: sqlite:///relative.db, sqlite:////absolute.db or "
        "postgresql://user@host/db (options go in the query string, e.g. "
        "sqlite:///app.db?synchronous=NORMAL)."
    ),
)
@click.option(
    "--read-url",
    "read_url",
    envvar="EVENTKEEP_READ_URL",
    default=None,
    show_envvar=True,
    metavar="URL",
    help=(
        "PostgreSQL only: a streaming replica of --store that serves the reads (log, read, "
        "projections' reading of the log); writes still go to --store. "
        "E.g. postgresql://app@replica/app."
    ),
)
@click.option(
    "--import",
    "imports",
    multiple=True,
    metavar="MODULE",
    help=(
        "Import this Python module first (repeatable; the current directory is importable), "
        "e.g. the module that defines your event classes: append then checks DATA_JSON against "
        "the registered class of TYPE."
    ),
)
@click.version_option(eventkeep.__version__, "--version", prog_name="eventkeep")
def main(store: str, read_url: str | None, imports: tuple[str, ...]) -> None:
    """eventkeep: an append-only event store with hash-chained history.

    --store may also be given after the command name.

    \b
    Examples:
      eventkeep append account-1 Deposited '{"amount": "10.00"}' --expected-version no_stream
      eventkeep read account-1
      eventkeep --store sqlite:///bank.db log --type Deposited --json
      eventkeep --store postgresql://app@primary/app --read-url postgresql://app@replica/app \
        projections run bank.projections:AccountBalances
      eventkeep verify
    """
    if imports and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in imports:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise cli_error(
                f"--import {name}: {type(exc).__name__}: {' '.join(str(exc).split())}", EXIT_USAGE
            ) from exc
