"""OpenTelemetry spans for appends, reads, loads, saves and projection batches, when
``opentelemetry-api`` is installed (the ``otel`` extra); nothing at all otherwise.

Spans go to whatever SDK the application configured; until it sets a tracer provider,
eventkeep makes none (not even the API's no-op spans). A W3C ``traceparent`` stored in an
event's metadata (the HTTP server puts the request's there) makes the span of the projection
or reactor handling that event a child of the request that appended it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["ENABLED", "prepare", "span"]

ENABLED = importlib.util.find_spec("opentelemetry") is not None
"""Whether ``opentelemetry-api`` is importable (checked once, without importing it)."""

_tracer: Any = None
_trace: Any = None  # the opentelemetry.trace module, once imported
_FROM_ENVIRONMENT = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_NOTHING = contextlib.nullcontext()


def span(
    name: str, traceparent: str | None = None, **attributes: Any
) -> contextlib.AbstractContextManager[None]:
    """A span ``name`` with ``attributes``; a child of ``traceparent`` when one is given.

    Nothing (a shared no-op context) until the application sets a tracer provider: the API's
    own no-op spans cost an append about a tenth of its CPU (cProfile, SQLite)."""
    if not ENABLED:
        return _NOTHING
    tracer = _tracer if _tracer is not None else _configured_tracer()
    if tracer is None:
        return _NOTHING
    return _otel_span(tracer, name, traceparent, attributes)


def prepare() -> None:
    """Import now what the first span would import (``opentelemetry.trace`` and its
    propagation: about 15-20 ms of CPU, once per process), for a caller that must not pay it
    later where it would block an event loop: ``eventkeep.aio`` calls it where it builds an
    async store, on a thread or before the loop runs."""
    if ENABLED and _trace is None:
        import opentelemetry.propagate  # noqa: F401 - imported for its cost, not its names

        _configured_tracer()


def _configured_tracer() -> Any:
    """eventkeep's tracer once the application has set a tracer provider, else None."""
    global _tracer, _trace
    trace = _trace
    if trace is None:  # imported once: an import statement per call cost appends 2-3%
        from opentelemetry import trace

        _trace = trace

    # The API's global before asking for it: get_tracer_provider() reads the environment on
    # every call until a provider is set (a provider named there is loaded by that call).
    if getattr(trace, "_TRACER_PROVIDER", True) is None and not _FROM_ENVIRONMENT:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    _tracer = provider.get_tracer("eventkeep")
    return _tracer


@contextlib.contextmanager
def _otel_span(
    tracer: Any, name: str, traceparent: str | None, attributes: dict[str, Any]
) -> Iterator[None]:
    from opentelemetry.propagate import extract

    context = extract({"traceparent": traceparent}) if isinstance(traceparent, str) else None
    with tracer.start_as_current_span(name, context=context, attributes=attributes):
        yield
