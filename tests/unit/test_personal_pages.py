"""A page of stored data is searched once for encrypted values; events of a page holding none
are decoded without searching again, and a page holding one still reveals it."""

from __future__ import annotations

from typing import Annotated

from hypothesis import given
from hypothesis import strategies as st

import eventkeep
from eventkeep import Personal
from eventkeep.store import personal
from eventkeep.store.personal import holds_personal_any

ENVELOPE = b'{"email":{"$eventkeep:personal":["c-1","QUJD"]}}'


def test_a_page_is_searched_joined_whatever_its_data_type() -> None:
    assert not holds_personal_any([b'{"a":1}', b'{"b":2}'])
    assert holds_personal_any([b'{"a":1}', ENVELOPE])
    assert holds_personal_any(['{"a":1}', ENVELOPE.decode()])
    assert holds_personal_any(['{"a":1}', ENVELOPE])  # mixed: searched one by one
    assert not holds_personal_any(['{"a":1}', b'{"b":2}'])


class Registered(eventkeep.Event):
    __event_type__ = "test.pages.Registered"

    customer_id: str
    email: Annotated[str, Personal(subject="customer_id")]


def test_plain_pages_are_marked_and_personal_ones_revealed() -> None:
    with eventkeep.open_store("memory://") as store:
        store.append("plain-1", [eventkeep.RawEvent("Noted", {"n": 1})])
        plain = list(store.read_stream("plain-1"))
        assert all(event._plain for event in plain)
        assert plain[0].data == {"n": 1}
        store.append("c-1", [Registered(customer_id="c-1", email="ann@example.com")])
        mixed = list(store.read_all())
        assert not any(event._plain for event in mixed)  # the page holds ciphertext
        assert mixed[-1].data["email"] == "ann@example.com"
        store.forget("c-1")
        assert next(iter(store.read_stream("c-1"))).data["email"] == "[redacted]"


_PIECES = st.sampled_from(['{"', '"$', "$", "eventkeep", ":personal", '":[', '"', "r", "{", "["])


@given(parts=st.lists(_PIECES, max_size=30))
def test_finding_the_markers_agrees_with_a_substring_search(parts: list[str]) -> None:
    # holds_personal and holds_reserved_key find each "$" by memchr, then compare the marker
    # there: whatever the text, the answer must be that of a plain substring search.
    text = "".join(parts)
    envelope = personal.ENVELOPE_PREFIX.decode()
    reserved = personal.RESERVED_KEY_JSON.decode()
    assert personal.holds_personal(text) == (envelope in text)
    assert personal.holds_personal(text.encode()) == (envelope in text)
    assert personal.holds_personal_any([text, "{}"]) == (envelope in text)
    assert personal.holds_reserved_key(text.encode()) == (reserved in text)
