"""Property test of bad input: every append is stored and read back exactly, or refused with an
eventkeep error and nothing stored, and every backend gives the answer the memory store gives.

Hypothesis generates untyped data and metadata mixing what JSON holds (str keys; str, int,
float, bool, None, lists, dicts) with what it would change or cannot hold (int, float, None
and bool keys, NaN and infinity, bytes, sets, naive datetimes, lone surrogates, tuples, nesting
near the depth limit), and stream ids and type names with control characters, NUL and padding.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventkeep.backends.memory import MemoryStore
from eventkeep.errors import EventkeepError, SerializationError, ValidationError
from eventkeep.store import EventStore
from eventkeep.store.events import RawEvent
from eventkeep.testing.base import ContractBase

__all__ = ["BadInputPropertyContract", "json_values"]

MAX_EXAMPLES = 150

_keys = (
    st.text(max_size=4)
    | st.integers(-3, 3)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.none()
    | st.booleans()
)
_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=6)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _text
    | st.binary(max_size=3)
    | st.datetimes(max_value=dt.datetime(2100, 1, 1))
    | st.frozensets(st.integers(0, 3), max_size=2)
)


def _nested(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.tuples(inner) | st.dictionaries(_keys, inner, max_size=3)
    ),
    max_leaves=8,
)
_data = st.dictionaries(_keys, json_values, max_size=4) | st.integers(124, 132).map(
    lambda n: {"deep": _nested(n)}
)
_names = st.sampled_from(["T", "contract.Raw"]) | st.text(max_size=3)


def _plain(value: Any) -> Any:
    """What JSON reads back for an accepted value: tuples become lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _outcome(store: EventStore, stream_id: str, event: RawEvent, meta: Any) -> tuple[Any, ...]:
    """('stored', data, metadata) read back, or ('refused', error class, message)."""
    head = store.head_position()
    refused: EventkeepError | None = None
    try:
        store.append(stream_id, [event], metadata=meta)
    except EventkeepError as exc:
        refused = exc
    if refused is not None:
        assert isinstance(refused, ValidationError | SerializationError), repr(refused)
        assert str(refused), "an error must say what was wrong"
        assert store.head_position() == head, "a refused append stored something"
        return ("refused", type(refused), str(refused))
    [recorded] = store.read_stream(stream_id)
    assert recorded.data == _plain(event.data), "data did not read back exactly"
    assert recorded.metadata == _plain(meta or {}), "metadata did not read back exactly"
    return ("stored", recorded.raw_data, recorded.metadata)


class BadInputPropertyContract(ContractBase):
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(
        suffix=_names,
        type_name=_names,
        data=_data,
        metadata=st.none() | st.dictionaries(_keys, json_values, max_size=2),
    )
    def test_bad_input_is_stored_exactly_or_refused_alike_on_every_backend(
        self, store: EventStore, suffix: str, type_name: str, data: Any, metadata: Any
    ) -> None:
        """150 examples (max_examples=150): each appends one untyped event with generated
        data, metadata, stream id and type, to this backend and to a memory store."""
        n = next(_counter)
        stream_id = f"prop-{n}-{suffix}"
        event = RawEvent(type_name, data)
        reference = MemoryStore()
        expected = _outcome(reference, stream_id, event, metadata)
        actual = _outcome(store, stream_id, event, metadata)
        if expected[0] == "stored":
            assert actual[0] == "stored", actual
            assert actual[1:] == expected[1:]
        else:
            assert actual[:2] == expected[:2], (actual, expected)
            assert actual[2] == expected[2]


_counter = itertools.count()
