"""``eventkeep anchor``: sign a statement of the whole history; ``eventkeep anchor-key``: make a
key pair to sign anchors with. ``eventkeep verify --anchor`` checks a store against an anchor."""

from __future__ import annotations

import os
from pathlib import Path

import click

from eventkeep import EventStore
from eventkeep.cli._common import EXIT_USAGE, console, fail, pass_store
from eventkeep.errors import AnchorError
from eventkeep.store.anchors import (
    KEY_ENV_VAR,
    Anchor,
    AnchorKey,
    generate_ed25519_key,
    read_anchor,
    read_key,
)

__all__ = ["anchor", "anchor_key", "key_file_option", "load_anchor_file", "load_cli_key"]

key_file_option = click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=(
        f"The anchor key: an Ed25519 key in PEM (private to sign; public suffices to verify) or "
        f"an HMAC secret of at least 32 bytes. Default: the ${KEY_ENV_VAR} environment variable. "
        "Never keep it in the store's database."
    ),
)


def load_cli_key(path: Path | None) -> AnchorKey:
    return read_key(path)


def load_anchor_file(path: Path) -> Anchor:
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read the anchor {path}: {exc.strerror}", EXIT_USAGE)
    try:
        return read_anchor(data)
    except AnchorError as exc:
        fail(f"{path}: {exc}", EXIT_USAGE)


def _write_new(path: Path, data: bytes, *, mode: int = 0o644, force: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        fail(f"{path} exists already (--force to replace it)", EXIT_USAGE)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}", EXIT_USAGE)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


@click.command()
@key_file_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the anchor to this file (refused if it exists, unless --force) instead of stdout.",
)
@click.option("--force", is_flag=True, help="Let --output replace an existing file.")
@click.option(
    "--previous",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An earlier anchor of this store to extend: only the events after it are digested.",
)
@pass_store()
def anchor(
    store: EventStore,
    key_file: Path | None,
    output: Path | None,
    force: bool,
    previous: Path | None,
) -> None:
    """Sign a small statement of the whole history up to the log's head (an anchor).

    The anchor holds the head position, the number of events and streams, a digest of every
    event's position, stream, version and hash in log order, a digest of the stream heads, and
    a signature by a key the store does not hold. Keep it where the database's administrator
    cannot rewrite it; `eventkeep verify --anchor FILE` then proves the store still holds
    exactly that history. See docs/security.md.

    \b
    Examples:
      eventkeep anchor-key anchor.pem
      eventkeep anchor --key-file anchor.pem --output anchors/$(date +%F).json
      eventkeep anchor --key-file anchor.pem --previous anchors/last.json -o anchors/new.json
    """
    key = load_cli_key(key_file)
    earlier = None if previous is None else load_anchor_file(previous)
    made = store.anchor(key, previous=earlier)
    document = made.to_json()
    if output is None:
        click.echo(document.decode(), nl=False)
        return
    _write_new(output, document, force=force)
    console().print(
        f"Anchored {made.events} events in {made.streams} streams up to position "
        f"{made.position} ({made.algorithm} key {made.key_id}): {output}"
    )


@click.command("anchor-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def anchor_key(path: Path) -> None:
    """Make a new Ed25519 key pair for anchors: PATH (private, mode 600) and PATH.pub.

    Sign anchors with the private key, on a machine the database's administrator does not
    control; give auditors the public key, which can check anchors but not make them.

    \b
    Example:
      eventkeep anchor-key ~/.eventkeep/anchor.pem
    """
    private, public = generate_ed25519_key()
    public_path = path.with_name(path.name + ".pub")
    if public_path.exists():
        fail(f"{public_path} exists already", EXIT_USAGE)
    _write_new(path, private, mode=0o600)
    _write_new(public_path, public)
    key = read_key(path)
    console().print(f"Wrote {path} (private) and {public_path} (public); key id {key.key_id}")
