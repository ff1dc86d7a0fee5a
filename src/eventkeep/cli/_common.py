"""What every command shares: opening the store, exit codes, error messages and output.

Exit codes (documented in the README and in ``eventkeep --help``):

    0  success
    1  verify found a broken hash chain or another problem, projections run --until-caught-up
       ended with a projection failed, or the store failed (unreachable, locked, too new)
    2  bad input or usage (also: a missing optional dependency, a bad store URL, an anchor
       that is malformed or not signed by the given key)
    3  concurrency conflict: the stream's version is not the expected version
    4  not found: the stream, or the SQLite file, does not exist
    130/143  projections run: a second SIGINT/SIGTERM while finishing a batch (exit at once)

``--json`` output is one JSON document on stdout: an object, or for reads a JSON array of
events (written as it is read, one event per line, so long logs stream).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Concatenate, NoReturn, ParamSpec, TypeVar

import click
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import eventkeep
from eventkeep import EventStore, RecordedEvent
from eventkeep.urls import check_sqlite_options, redact

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_USAGE",
    "CliError",
    "cli_error",
    "console",
    "event_json",
    "fail",
    "json_option",
    "pass_store",
    "plural",
    "print_json",
    "print_json_array",
    "progress_bar",
    "store_url",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3
EXIT_NOT_FOUND = 4

P = ParamSpec("P")
R = TypeVar("R")

_encode = msgspec.json.Encoder().encode


class CliError(click.ClickException):
    """A one-line ``Error: ...`` on stderr and a chosen exit code; never a traceback.

    Click reads the exit code from the class, so each code has its own subclass; make one with
    :func:`cli_error` (or raise it with :func:`fail`).
    """

    exit_code = EXIT_FAILED


class _UsageError(CliError):
    exit_code = EXIT_USAGE


class _ConflictError(CliError):
    exit_code = EXIT_CONFLICT


class _NotFoundError(CliError):
    exit_code = EXIT_NOT_FOUND


_ERROR_CLASSES: dict[int, type[CliError]] = {
    cls.exit_code: cls for cls in (CliError, _UsageError, _ConflictError, _NotFoundError)
}


def cli_error(message: str, exit_code: int = EXIT_FAILED) -> CliError:
    """A :class:`CliError` that exits with ``exit_code`` (one of the ``EXIT_*`` codes)."""
    return _ERROR_CLASSES[exit_code](message)


def exit_code_for(exc: eventkeep.EventkeepError) -> int:
    if isinstance(exc, eventkeep.ConcurrencyError):
        return EXIT_CONFLICT
    if isinstance(exc, eventkeep.NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(
        exc,
        eventkeep.ValidationError
        | eventkeep.SerializationError
        | eventkeep.ConfigurationError
        | eventkeep.DuplicateEventIdError
        | eventkeep.AnchorError,
    ):
        return EXIT_USAGE
    return EXIT_FAILED


_WRITE_OUTCOME = ". A write interrupted this way"
"""Where the PostgreSQL backend's note on interrupted writes begins (see faults.py)."""


def from_library_error(exc: eventkeep.EventkeepError, *, writes: bool = True) -> CliError:
    message = " ".join(str(exc).split()) or type(exc).__name__
    if not writes and _WRITE_OUTCOME in message:
        # The note on interrupted writes is for appends: this command only read.
        message = (
            message.partition(_WRITE_OUTCOME)[0] + "; this command only reads, nothing was written"
        )
    return cli_error(message, exit_code_for(exc))


def fail(message: str, exit_code: int = EXIT_FAILED) -> NoReturn:
    raise cli_error(message, exit_code)


# -- the store ----------------------------------------------------------------------------------


def store_url(ctx: click.Context | None = None) -> str:
    """The store URL chosen by ``--store``, ``EVENTKEEP_STORE`` or the default."""
    ctx = ctx or click.get_current_context()
    url = ctx.find_root().params.get("store")
    return url if isinstance(url, str) else eventkeep.DEFAULT_STORE_URL


def display_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, for printing."""
    return redact(url)


def _sqlite_path(url: str) -> str | None:
    """The file path of a well-formed ``sqlite:///`` URL, else None (open_store explains)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite":
        return None
    rest = rest.partition("?")[0]
    if not rest.startswith("/") or rest == "/":
        return None
    path = rest[1:]
    return None if path == ":memory:" else path


def _is_postgres(url: str) -> bool:
    return url.partition("://")[0].lower() in ("postgresql", "postgres")


def open_cli_store(ctx: click.Context, *, create: bool, writes: bool | None = None) -> EventStore:
    """Open the store for this invocation; it is closed when the command ends.

    Commands that only read pass ``create=False``: a SQLite file that does not exist is then an
    error rather than a new empty store (a typo in ``--store`` should not look like an empty log).
    """
    url = store_url(ctx)
    ctx.meta["eventkeep.writes"] = create if writes is None else writes
    read_url = ctx.find_root().params.get("read_url")
    if read_url and not _is_postgres(url):
        fail(
            f"--read-url (EVENTKEEP_READ_URL) names a PostgreSQL replica, but the store "
            f"{display_url(url)} is not PostgreSQL",
            EXIT_USAGE,
        )
    path = _sqlite_path(url)
    if path is not None:
        # A bad option is reported as such, before anything about the file or its directory.
        check_sqlite_options(url)
        directory = Path(path).parent
        if not directory.is_dir():
            fail(
                f"no event store at {display_url(url)}: the directory {directory} does not exist "
                "(eventkeep creates the database file, not its directory)",
                EXIT_USAGE,
            )
        if not create and not Path(path).exists():
            fail(
                f"no event store at {display_url(url)}: {path} does not exist "
                "(append an event to create it, or choose another with --store/EVENTKEEP_STORE)",
                EXIT_NOT_FOUND,
            )
    options: dict[str, Any] = {"create": False} if not create and _is_postgres(url) else {}
    if read_url:
        options["read_url"] = read_url
    store = eventkeep.open_store(url, **options)
    ctx.call_on_close(store.close)
    return store


def pass_store(
    *, create: bool = False, writes: bool | None = None
) -> Callable[[Callable[Concatenate[EventStore, P], R]], Callable[P, R]]:
    """Decorate a command callback to receive the opened store as its first argument.

    ``create``: the command may create the store. ``writes`` (default: ``create``): the command
    writes to an existing store, so a lost connection may have interrupted a write."""

    def decorate(fn: Callable[Concatenate[EventStore, P], R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            store = open_cli_store(click.get_current_context(), create=create, writes=writes)
            return fn(store, *args, **kwargs)

        return wrapper

    return decorate


# -- output -------------------------------------------------------------------------------------

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table."
)


def console() -> Console:
    """A rich console on the current stdout (so click's test runner captures it)."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def print_json(value: Any) -> None:
    click.echo(_encode(value).decode())


def print_json_array(items: Iterable[Any]) -> None:
    """One JSON array, written as it is produced: one element per line."""
    first = True
    for item in items:
        click.echo(("[\n" if first else ",\n") + _encode(item).decode(), nl=False)
        first = False
    click.echo("[]" if first else "\n]")


def event_json(recorded: RecordedEvent) -> dict[str, Any]:
    """A recorded event as JSON: data as stored (decimals stay strings; personal values
    revealed, or redacted once forgotten), UUIDs and times as strings, ``recorded_at`` in
    ISO 8601 with microseconds and a UTC offset."""
    out = {
        "position": recorded.position,
        "stream_id": recorded.stream_id,
        "version": recorded.version,
        "type": recorded.type,
        "schema_version": recorded.schema_version,
        "event_id": str(recorded.event_id),
        "recorded_at": recorded.recorded_at.isoformat(),
        "data": msgspec.Raw(recorded.revealed_data),
        "metadata": recorded.metadata,
    }
    if recorded.tags:  # only events with tags: the output of others is as it was
        out["tags"] = list(recorded.tags)
    return out


def data_text(recorded: RecordedEvent, limit: int = 400) -> str:
    """The stored JSON of an event's data, shortened for a table cell."""
    text = recorded.revealed_data.decode("utf-8", "replace")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when_text(recorded: RecordedEvent) -> str:
    return recorded.recorded_at.strftime("%Y-%m-%d %H:%M:%S")


def plural(count: int, noun: str) -> str:
    """``1 event``, ``2 events``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


@contextlib.contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr when stderr is a terminal; yields ``advance(done, total=)``
    (a total given later replaces the first)."""
    err = Console(file=sys.stderr)
    if not err.is_terminal:
        yield lambda done, total=None: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task(description, total=total)

        def advance(done: int, total: int | None = None) -> None:
            if total is not None:
                progress.update(task, total=total)
            progress.update(task, completed=done)

        yield advance
