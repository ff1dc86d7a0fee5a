"""Input checks shared by every backend: names (stream ids, type names) and counts."""

from __future__ import annotations

from typing import Any

import pytest

from eventkeep import ConfigurationError, ValidationError
from eventkeep.store.validation import (
    MAX_COUNT,
    MAX_NAME_LENGTH,
    check_count,
    check_name,
    check_optional_count,
    check_stream_id,
    check_text,
)


@pytest.mark.parametrize(
    "name",
    ["a", "x" * MAX_NAME_LENGTH, "account-1", "a b", "konto-ü-日本-🙂", "a:b/c#d?e", "a_%'\"\\"],
)
def test_usable_names_are_returned_unchanged(name: str) -> None:
    assert check_name(name, what="stream id") is name
    assert check_stream_id(name) is name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("", "must not be empty", id="empty"),
        pytest.param("x" * (MAX_NAME_LENGTH + 1), "256 characters long", id="too-long"),
        pytest.param("a\x00b", "control character", id="NUL"),
        pytest.param("a\x1fb", "control character", id="unit-separator"),
        pytest.param("a\x85b", "control character", id="C1-next-line"),
        pytest.param("a\u2029b", "control character", id="paragraph-separator"),
        pytest.param(" a", "whitespace", id="leading-space"),
        pytest.param("a\u3000", "whitespace", id="trailing-ideographic-space"),
        pytest.param("a\udc80", "surrogate", id="lone-surrogate"),
        pytest.param(7, "must be a str", id="int"),
        pytest.param(b"a", "must be a str", id="bytes"),
        pytest.param(None, "must be a str", id="None"),
    ],
)
def test_unusable_names_are_refused_with_a_message_saying_why(name: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        check_stream_id(name)
    assert "stream id" in str(caught.value)


@pytest.mark.parametrize("text", ["", " padded ", "a\nb", "x" * 1000])
def test_any_valid_unicode_text_passes_check_text(text: str) -> None:
    assert check_text(text, what="prefix") is text


@pytest.mark.parametrize("text", ["\ud800", 1, None, b"a"])
def test_check_text_refuses_non_str_and_lone_surrogates(text: Any) -> None:
    with pytest.raises(ValidationError, match="prefix"):
        check_text(text, what="prefix")


def test_the_error_class_can_be_chosen() -> None:
    with pytest.raises(ConfigurationError, match="event type name"):
        check_name("", what="event type name", error=ConfigurationError)


def test_a_control_character_is_reported_with_its_index() -> None:
    with pytest.raises(ValidationError, match="at index 3"):
        check_stream_id("abc\ndef")


@pytest.mark.parametrize("value", [0, 1, 2**62])
def test_counts_at_or_above_the_minimum_are_returned(value: int) -> None:
    assert check_count(value, what="limit") == value


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None])
def test_counts_must_be_ints_and_not_bools(value: Any) -> None:
    with pytest.raises(ValidationError, match="must be an int"):
        check_count(value, what="limit")


def test_counts_above_a_signed_64_bit_int_are_refused() -> None:
    assert MAX_COUNT == 2**63 - 1
    assert check_count(MAX_COUNT, what="limit") == MAX_COUNT
    with pytest.raises(ValidationError, match="64-bit"):
        check_count(MAX_COUNT + 1, what="limit")


def test_counts_below_the_minimum_are_refused() -> None:
    with pytest.raises(ValidationError, match="must be >= 1, got 0"):
        check_count(0, what="from_version", minimum=1)
    with pytest.raises(ValidationError, match=">= 0"):
        check_count(-1, what="limit")


def test_an_optional_count_may_be_none() -> None:
    assert check_optional_count(None, what="limit") is None
    assert check_optional_count(3, what="limit") == 3
    with pytest.raises(ValidationError):
        check_optional_count(-3, what="limit")


def test_schema_versions_are_capped_at_a_signed_32_bit_int() -> None:
    import eventkeep
    from eventkeep.errors import ConfigurationError
    from eventkeep.store.validation import MAX_SCHEMA_VERSION

    assert MAX_SCHEMA_VERSION == 2**31 - 1
    store = eventkeep.open_store("memory://")
    with pytest.raises(ValidationError, match="schema_version"):
        store.append("s", [eventkeep.RawEvent("T", {}, schema_version=2**31)])
    assert store.head_position() == 0
    with pytest.raises(ConfigurationError, match="__schema_version__"):

        class TooNew(eventkeep.Event):
            __event_type__ = "unit.TooNew"
            __schema_version__ = 2**31
