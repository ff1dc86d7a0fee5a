"""Property tests: random interleavings of appends and reads agree with a pure-Python model.

Each example opens one fresh store and runs a random program of operations against it and
against :class:`Model` side by side: appends to a few streams with right and wrong expected
versions of every mode, atomic multi-stream appends, retries of earlier appends (same event
ids), and reads of every kind. Positions are not predicted (a backend may leave gaps); the model
takes them from the store's results and checks they only ever increase.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventkeep.errors import ConcurrencyError, DuplicateEventIdError
from eventkeep.store import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    EventStore,
    StreamAppend,
)
from eventkeep.store.events import NewEvent, RawEvent
from eventkeep.testing.base import ContractBase, StoreFactory

__all__ = ["Model", "PropertyContract"]

STREAMS = ("acc-1", "acc-2", "acc-10", "ord-1")
PREFIXES = ("", "acc-", "acc-1", "ord-", "zzz")
TYPES = ("contract.A", "contract.B", "contract.C")
MODES = ("any", "no_stream", "stream_exists", "right", "behind", "ahead")


@dataclass
class Stored:
    stream_id: str
    version: int
    position: int
    event_id: uuid.UUID
    type: str
    data: dict[str, Any]


@dataclass
class Model:
    """What the store must hold: each stream's events, and the global log in position order."""

    streams: dict[str, list[Stored]] = field(default_factory=dict)
    log: list[Stored] = field(default_factory=list)

    def version(self, stream_id: str) -> int:
        return len(self.streams.get(stream_id, ()))

    def accepts(self, stream_id: str, expected: Any) -> bool:
        actual = self.version(stream_id)
        if expected is ANY:
            return True
        if expected is NO_STREAM:
            return actual == 0
        if expected is STREAM_EXISTS:
            return actual > 0
        return bool(actual == expected)

    def record(self, stream_id: str, events: list[NewEvent], result: AppendResult) -> None:
        first = self.version(stream_id) + 1
        assert result.stream_id == stream_id
        assert result.versions == tuple(range(first, first + len(events)))
        head = self.log[-1].position if self.log else 0
        assert result.positions[0] > head, "a new event got a position at or below the head"
        assert list(result.positions) == sorted(set(result.positions))
        for new, version, position in zip(events, result.versions, result.positions, strict=True):
            raw = new.event
            assert isinstance(raw, RawEvent)
            assert new.event_id is not None
            row = Stored(stream_id, version, position, new.event_id, raw.type, raw.data)
            self.streams.setdefault(stream_id, []).append(row)
            self.log.append(row)


@dataclass
class Program:
    """Runs generated operations against a store and the model, checking each outcome."""

    store: EventStore
    model: Model = field(default_factory=Model)
    done: list[tuple[list[StreamAppend], list[AppendResult]]] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def events(self, spec: list[int]) -> list[NewEvent]:
        out = []
        for type_index in spec:
            n = next(self.counter)
            event = RawEvent(TYPES[type_index], {"n": n, "text": f"event {n}"})
            out.append(NewEvent(event, event_id=uuid.UUID(int=n + 1)))
        return out

    def expected(self, stream_id: str, mode: str) -> Any:
        actual = self.model.version(stream_id)
        return {
            "any": ANY,
            "no_stream": NO_STREAM,
            "stream_exists": STREAM_EXISTS,
            "right": actual,
            "behind": max(actual - 1, 0) if actual else 1,
            "ahead": actual + 1,
        }[mode]

    def append(self, parts: list[tuple[int, str, list[int]]]) -> None:
        appends, seen = [], set()
        for stream_index, mode, spec in parts:
            stream_id = STREAMS[stream_index]
            if stream_id in seen:
                continue
            seen.add(stream_id)
            appends.append(
                StreamAppend(stream_id, self.events(spec), self.expected(stream_id, mode))
            )
        refused = [a for a in appends if not self.model.accepts(a.stream_id, a.expected_version)]
        if refused:
            head = len(self.model.log)
            with pytest.raises(ConcurrencyError) as caught:
                self.store.append_many(appends)
            error = caught.value
            assert error.stream_id in {a.stream_id for a in refused}
            wrong = next(a for a in refused if a.stream_id == error.stream_id)
            assert error.expected == wrong.expected_version
            assert error.actual == self.model.version(error.stream_id)
            assert len(self.model.log) == head
            return
        if len(appends) == 1:
            a = appends[0]
            results = [self.store.append(a.stream_id, a.events, a.expected_version)]
        else:
            results = self.store.append_many(appends)
        assert len(results) == len(appends)
        for a, result in zip(appends, results, strict=True):
            self.model.record(a.stream_id, list(a.events), result)  # type: ignore[arg-type]
        self.done.append((appends, results))

    def retry(self, index: int) -> None:
        if not self.done:
            return
        appends, results = self.done[index % len(self.done)]
        if len(appends) == 1:
            a = appends[0]
            again = [self.store.append(a.stream_id, a.events, a.expected_version)]
        else:
            again = self.store.append_many(appends)
        assert again == results, "a retry must return the original result"

    def reuse(self, index: int, stream_index: int) -> None:
        """Send one stored event id again with different data, or in another stream."""
        if not self.model.log:
            return
        stored = self.model.log[index % len(self.model.log)]
        other = RawEvent(stored.type, {**stored.data, "changed": True})
        stream_id = STREAMS[stream_index]
        with pytest.raises(DuplicateEventIdError):
            self.store.append(stream_id, [NewEvent(other, event_id=stored.event_id)])

    def read_stream(
        self, stream_index: int, low: int, high: int | None, back: bool, limit: int | None
    ) -> None:
        stream_id = STREAMS[stream_index]
        rows = [
            r
            for r in self.model.streams.get(stream_id, [])
            if r.version >= low and (high is None or r.version <= high)
        ]
        if back:
            rows.reverse()
        if limit is not None:
            rows = rows[:limit]
        got = list(self.store.read_stream(stream_id, low, high, backwards=back, limit=limit))
        assert [_key(e) for e in got] == [_model_key(r) for r in rows]

    def read_all(
        self, after_index: int, limit: int | None, prefix_index: int, types: list[int] | None
    ) -> None:
        log = self.model.log
        after = 0 if not log or after_index == 0 else log[(after_index - 1) % len(log)].position
        prefix = PREFIXES[prefix_index]
        names = None if types is None else [TYPES[t] for t in types]
        rows = [
            r
            for r in log
            if r.position > after
            and r.stream_id.startswith(prefix)
            and (names is None or r.type in names)
        ]
        if limit is not None:
            rows = rows[:limit]
        got = list(self.store.read_all(after, limit, types=names, stream_prefix=prefix or None))
        assert [_key(e) for e in got] == [_model_key(r) for r in rows]

    def check_everything(self) -> None:
        model, store = self.model, self.store
        assert [_key(e) for e in store.read_all()] == [_model_key(r) for r in model.log]
        for stream_id in STREAMS:
            assert store.stream_version(stream_id) == model.version(stream_id)
        listed = [(s.stream_id, s.version, s.last_position) for s in store.list_streams()]
        assert listed == sorted(
            (s, len(rows), rows[-1].position) for s, rows in model.streams.items()
        )
        stats = store.stats()
        assert (stats.events, stats.streams) == (len(model.log), len(model.streams))
        assert stats.head_position == store.head_position()
        assert stats.head_position == (model.log[-1].position if model.log else 0)
        types: dict[str, int] = {}
        for row in model.log:
            types[row.type] = types.get(row.type, 0) + 1
        assert stats.types == types
        report = store.verify()
        assert report.ok
        assert report.events_checked == len(model.log)


def _key(e: Any) -> tuple[Any, ...]:
    return (e.stream_id, e.version, e.position, e.event_id, e.type, e.data)


def _model_key(r: Stored) -> tuple[Any, ...]:
    return (r.stream_id, r.version, r.position, r.event_id, r.type, r.data)


_stream = st.integers(0, len(STREAMS) - 1)
_spec = st.lists(st.integers(0, len(TYPES) - 1), min_size=1, max_size=3)
_part = st.tuples(_stream, st.sampled_from(MODES), _spec)
_optional_count = st.none() | st.integers(0, 6)

OPERATIONS = st.one_of(
    st.tuples(st.just("append"), st.lists(_part, min_size=1, max_size=1)),
    st.tuples(st.just("append"), st.lists(_part, min_size=1, max_size=3)),
    st.tuples(st.just("retry"), st.integers(0, 50)),
    st.tuples(st.just("reuse"), st.integers(0, 50), _stream),
    st.tuples(
        st.just("read_stream"),
        _stream,
        st.integers(1, 8),
        _optional_count,
        st.booleans(),
        _optional_count,
    ),
    st.tuples(
        st.just("read_all"),
        st.integers(0, 30),
        _optional_count,
        st.integers(0, len(PREFIXES) - 1),
        st.none() | st.lists(st.integers(0, len(TYPES) - 1), max_size=2),
    ),
)


class PropertyContract(ContractBase):
    @settings(
        max_examples=50,
        deadline=None,
        # The store comes from the factory fixture, one fresh store per example; every backend's
        # subclass runs this same inherited method.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
            HealthCheck.too_slow,
        ],
    )
    @given(operations=st.lists(OPERATIONS, min_size=1, max_size=30))
    def test_random_appends_and_reads_agree_with_a_simple_model(
        self, make_store: StoreFactory, operations: list[tuple[Any, ...]]
    ) -> None:
        store = make_store()
        try:
            program = Program(store)
            for name, *args in operations:
                getattr(program, name)(*args)
            program.check_everything()
        except BaseException:
            _load_hypothesis_patching_quietly()
            raise
        finally:
            store.close()


def _load_hypothesis_patching_quietly() -> None:
    """Import what hypothesis's pytest plugin imports to report a failing example, now.

    That import (libcst) raises a DeprecationWarning; under ``filterwarnings = error`` it would
    turn the failure report into an INTERNALERROR that hides the falsifying example.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(Exception):
            importlib.import_module("hypothesis.extra._patching")
