"""OpenTelemetry spans: appends, reads, loads, saves and projection batches are traced, and an
event's stored traceparent makes the span that handles it a child of the appending request."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import eventkeep
from eventkeep import telemetry
from eventkeep.examples.bank.account import BankAccount
from eventkeep.projections import HandlerContext, Projection, Runner, handles

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
TRACEPARENT = f"00-{TRACE_ID:032x}-00f067aa0ba902b7-01"


class RecordingTracer(trace.Tracer):
    """Records each span's name, attributes and parent trace id (the API has no SDK here)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, dict[str, Any], int | None]] = []  # name, attributes, parent
        self.trace_ids: list[int] = []  # each span's own trace

    def start_span(self, name: str, context: Any = None, *args: Any, **kwargs: Any) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        trace_id = parent.trace_id if parent.is_valid else random.getrandbits(128)
        self.spans.append(
            (name, dict(kwargs.get("attributes") or {}), trace_id if parent.is_valid else None)
        )
        self.trace_ids.append(trace_id)
        return NonRecordingSpan(
            SpanContext(trace_id, random.getrandbits(64), False, TraceFlags(TraceFlags.SAMPLED))
        )

    @contextlib.contextmanager
    def start_as_current_span(
        self, name: str, context: Any = None, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        span = self.start_span(name, context, attributes=kwargs.get("attributes"))
        with trace.use_span(span, end_on_exit=True):
            yield span

    def names(self) -> list[str]:
        return [name for name, _, _ in self.spans]


@pytest.fixture
def tracer(monkeypatch: pytest.MonkeyPatch) -> RecordingTracer:
    recording = RecordingTracer()
    monkeypatch.setattr(telemetry, "_tracer", recording)
    return recording


class Audit(Projection):
    name = "telemetry.audit"
    seen: list[int] = []

    @handles("Noted")
    def noted(self, event: Any, ctx: HandlerContext) -> None:
        type(self).seen.append(ctx.position)


def test_appends_reads_loads_and_saves_are_spans(tracer: RecordingTracer) -> None:
    store = eventkeep.open_store("memory://")
    accounts = eventkeep.Repository(store, BankAccount)
    account = accounts.create("a")
    account.open("Ann")
    account.deposit(Decimal("5"))
    accounts.save(account)
    accounts.load("a")
    list(store.read_all())
    assert {"eventkeep.save", "eventkeep.append", "eventkeep.load", "eventkeep.read"} <= set(
        tracer.names()
    )
    save = tracer.names().index("eventkeep.save")
    assert tracer.spans[save + 1][0] == "eventkeep.append"
    assert (
        tracer.spans[save + 1][2] == tracer.spans[save][2] or tracer.spans[save + 1][2] is not None
    )


def test_a_stored_traceparent_parents_the_span_of_the_handler(tracer: RecordingTracer) -> None:
    store = eventkeep.open_store("memory://")
    store.append(
        "notes",
        [
            eventkeep.NewEvent(
                eventkeep.RawEvent("Noted", {}), metadata={"traceparent": TRACEPARENT}
            ),
            eventkeep.RawEvent("Noted", {}),
        ],
    )
    Runner(store, [Audit()]).run(until_caught_up=True, timeout=10)
    assert "eventkeep.projection_batch" in tracer.names()
    handled = [
        (attrs, parent) for name, attrs, parent in tracer.spans if name == "eventkeep.handle"
    ]
    assert [attrs["position"] for attrs, _ in handled] == [1, 2]
    assert handled[0][1] == TRACE_ID  # the appending request's trace
    assert handled[1][1] != TRACE_ID  # no traceparent: the batch's own trace


def test_no_span_is_made_until_a_tracer_provider_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # The API's own no-op spans cost an append a tenth of its CPU: without a provider (this
    # process sets none), eventkeep does not ask the API for a tracer at all.
    monkeypatch.setattr(telemetry, "_tracer", None)
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert telemetry.span("eventkeep.append", stream_id="s-1") is telemetry.span("other")
    with eventkeep.open_store("memory://") as store:
        store.append("s-1", [eventkeep.RawEvent("Noted", {})])
        list(store.read_stream("s-1"))
    assert telemetry._tracer is None  # no tracer was asked for
