"""``eventkeep append``: append one untyped event (a type name and JSON data) to a stream."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import click
import msgspec

from eventkeep import Event, EventStore, ExpectedVersion, NewEvent, RawEvent
from eventkeep.cli._common import EXIT_USAGE, fail, json_option, pass_store, print_json

__all__ = ["EXPECTED_VERSION", "append", "parse_json_object"]

if TYPE_CHECKING:  # click >= 8.4 makes ParamType generic; older versions cannot subscript it
    _ParamType = click.ParamType[ExpectedVersion | int]
else:
    _ParamType = click.ParamType


class ExpectedVersionType(_ParamType):
    """``any``, ``no_stream``, ``stream_exists`` or the stream's version before the append."""

    name = "any|no_stream|stream_exists|N"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> ExpectedVersion | int:
        if isinstance(value, ExpectedVersion | int):
            return value
        text = str(value).strip().lower()
        try:
            return ExpectedVersion(text.replace("-", "_"))
        except ValueError:
            pass
        try:
            number = int(text)
        except ValueError:
            self.fail(
                f"{value!r} is not one of any, no_stream, stream_exists or a version number",
                param,
                ctx,
            )
        if number < 0:
            self.fail(f"{value!r} is negative; a stream's version is 0 or more", param, ctx)
        return number


EXPECTED_VERSION = ExpectedVersionType()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_stdin_text(what: str) -> str:
    """All of stdin as UTF-8 text, or fail with a message naming ``what``."""
    with click.open_file("-", "rb") as stdin:
        raw = stdin.read()
    try:
        text: str = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(
            f"{what} is not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})",
            EXIT_USAGE,
        )
    return text


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; a key given twice is an error (not the last one wins)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice in one object")
        seen.add(key)
    return dict(pairs)


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    """Parse ``text`` as a JSON object, or fail with a message naming ``what``."""
    try:
        value = json.loads(
            text, parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicate_keys
        )
    except ValueError as exc:
        fail(f"{what} is not valid JSON: {exc}", EXIT_USAGE)
    except RecursionError:
        fail(f"{what} is nested too deeply to be an event", EXIT_USAGE)
    if not isinstance(value, dict):
        fail(f"{what} must be a JSON object ({{...}}), got {type(value).__name__}", EXIT_USAGE)
    return value


def _typed(cls: type[Event], event_type: str, payload: dict[str, Any], what: str) -> Event:
    """``payload`` as the registered class of ``event_type``, checked as reads will decode it."""
    if cls.__event_type__ != event_type:
        fail(
            f"{event_type!r} is an old name of {cls.__qualname__}; append it as "
            f"{cls.__event_type__!r}",
            EXIT_USAGE,
        )
    try:
        event: Event = msgspec.json.decode(msgspec.json.encode(payload), type=cls)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        fail(
            f"{what} does not fit {cls.__qualname__}, the class registered for "
            f"{event_type!r}: {exc}",
            EXIT_USAGE,
        )
    return event


@click.command()
@click.argument("stream")
@click.argument("event_type", metavar="TYPE")
@click.argument("data", metavar="[DATA_JSON]", required=False)
@click.option(
    "--expected-version",
    "-e",
    type=EXPECTED_VERSION,
    default="any",
    show_default=True,
    help="The stream's version before this append: any, no_stream, stream_exists or a number.",
)
@click.option("--metadata", "-m", metavar="JSON", help="Metadata as a JSON object.")
@click.option(
    "--event-id",
    type=click.UUID,
    help="The event's id (default: a new UUID); re-sending the same append is a no-op.",
)
@click.option(
    "--tag",
    "-g",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Tag the event (repeat for several), e.g. student:ann; see `eventkeep query`.",
)
@json_option
@pass_store(create=True)
def append(
    store: EventStore,
    stream: str,
    event_type: str,
    data: str | None,
    expected_version: ExpectedVersion | int,
    metadata: str | None,
    event_id: uuid.UUID | None,
    tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """Append one event of type TYPE to STREAM.

    DATA_JSON is a JSON object (default {}); pass - to read it from stdin. Write decimals as
    strings ("10.00") to keep them exact.

    When TYPE is a registered event class (load the module that defines it with
    eventkeep --import MODULE append ...), DATA_JSON must fit the class, exactly as
    Repository.load will read it back: {"sku": 5} is refused for a field declared str. Other
    types are stored as given.

    \b
    Examples:
      eventkeep append account-1 Opened '{"owner": "Ada"}' --expected-version no_stream
      eventkeep append account-1 Deposited '{"amount": "10.00"}' -e 1
      echo '{"amount": "2.50"}' | eventkeep append account-1 Withdrawn - --json
      eventkeep append courses StudentSubscribed '{}' --tag student:ann --tag course:math
    """
    if data == "-":
        data = read_stdin_text("the event data on stdin")
        what = "the event data on stdin"
    else:
        what = "DATA_JSON"
    payload = {} if data is None else parse_json_object(data, what)
    meta = None if metadata is None else parse_json_object(metadata, "--metadata")
    event_id = event_id or uuid.uuid4()
    item: Event | RawEvent = RawEvent(event_type, payload)
    cls = store.registry.lookup(event_type)
    if cls is not None:
        item = _typed(cls, event_type, payload, what)
    event = NewEvent(item, event_id=event_id, tags=list(tags) or None)
    result = store.append(stream, [event], expected_version=expected_version, metadata=meta)
    if as_json:
        print_json(
            {
                "stream_id": result.stream_id,
                "version": result.version,
                "position": result.position,
                "event_id": str(event_id),
                "type": event_type,
                "tags": sorted(set(tags)),
            }
        )
    else:
        click.echo(
            f"Appended {event_type} to {result.stream_id} at version {result.version} "
            f"(position {result.position}, event id {event_id})."
        )
