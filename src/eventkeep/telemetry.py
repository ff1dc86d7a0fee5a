"""OpenTelemetry spans for appends, reads, loads, saves and projection batches, when
``opentelemetry-api`` is installed (the ``otel`` extra); nothing at all otherwise.

Spans go to whatever SDK the application configured (without one, the API's spans are
no-ops). A W3C ``traceparent`` stored in an event's metadata (the HTTP server puts the
request's there) makes the span of the projection or reactor handling that event a child of
the request that appended it.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from typing import Any

__all__ = ["ENABLED", "span"]

ENABLED = importlib.util.find_spec("opentelemetry") is not None
"""Whether ``opentelemetry-api`` is importable (checked once, without importing it)."""

_tracer: Any = None


@contextlib.contextmanager
def span(name: str, traceparent: str | None = None, **attributes: Any) -> Iterator[None]:
    """A span ``name`` with ``attributes``; a child of ``traceparent`` when one is given."""
    if not ENABLED:
        yield
        return
    yield from _otel_span(name, traceparent, attributes)


def _otel_span(name: str, traceparent: str | None, attributes: dict[str, Any]) -> Iterator[None]:
    global _tracer
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    if _tracer is None:
        _tracer = trace.get_tracer("eventkeep")
    context = extract({"traceparent": traceparent}) if isinstance(traceparent, str) else None
    with _tracer.start_as_current_span(name, context=context, attributes=attributes):
        yield
