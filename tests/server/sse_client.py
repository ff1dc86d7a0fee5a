"""A small Server-Sent Events reader for the tests (httpx streaming)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx


class Frame(NamedTuple):
    event: str
    id: str | None
    data: Any


def frames(response: httpx.Response) -> Iterator[Frame | str]:
    """SSE frames, and comments (heartbeats) as strings."""
    event, ident, data = "message", None, []
    for line in response.iter_lines():
        if line.startswith(":"):
            yield line[1:].strip()
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("id:"):
            ident = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield Frame(event, ident, json.loads("\n".join(data)))
            event, ident, data = "message", None, []


def take(response: httpx.Response, count: int) -> list[Frame]:
    """The next ``count`` event frames (comments skipped)."""
    out: list[Frame] = []
    for frame in frames(response):
        if isinstance(frame, Frame):
            out.append(frame)
            if len(out) == count:
                break
    return out
