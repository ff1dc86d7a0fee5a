"""OpenTelemetry spans, when ``opentelemetry-api`` is installed (the ``otel`` extra); nothing
otherwise. Without an SDK configured, the API's spans are no-ops."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from typing import Any

__all__ = ["span"]

_tracer: Any = None
_available = importlib.util.find_spec("opentelemetry") is not None


@contextlib.contextmanager
def span(name: str, traceparent: str | None = None, **attributes: Any) -> Iterator[None]:
    """A span ``name`` (child of the W3C ``traceparent`` given, when there is one)."""
    global _tracer
    if not _available:
        yield
        return
    from opentelemetry import trace
    from opentelemetry.propagate import extract

    if _tracer is None:
        _tracer = trace.get_tracer("eventkeep")
    context = extract({"traceparent": traceparent}) if traceparent else None
    with _tracer.start_as_current_span(name, context=context, attributes=attributes):
        yield
