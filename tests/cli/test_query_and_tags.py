"""Tags through the CLI (`append --tag`) and DCB query reads (`eventkeep query`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from click.testing import Result

Invoke = Callable[..., Result]


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_tagged_appends_are_found_by_type_and_tags_with_the_head(cli: Invoke) -> None:
    first = as_json(
        cli(
            "append", "c", "Subscribed", "{}", "--tag", "student:ann", "-g", "course:math", "--json"
        )
    )
    assert first["tags"] == ["course:math", "student:ann"]
    cli("append", "c", "Subscribed", "{}", "--tag", "student:bob", "--tag", "course:math")
    cli("append", "c", "Dropped", "{}", "--tag", "student:ann", "--tag", "course:math")
    cli("append", "other", "Noted", "{}")
    found = as_json(cli("query", "--type", "Subscribed", "--tag", "course:math", "--json"))
    assert found["head"] == 4
    assert [e["position"] for e in found["events"]] == [1, 2]
    assert found["events"][0]["tags"] == ["course:math", "student:ann"]
    ann = as_json(cli("query", "--tag", "student:ann", "--tag", "course:math", "--json"))
    assert [e["type"] for e in ann["events"]] == ["Subscribed", "Dropped"]
    later = as_json(cli("query", "-g", "course:math", "--after", "1", "--limit", "1", "--json"))
    assert [e["position"] for e in later["events"]] == [2]
    assert later["head"] == 2
    everything = as_json(cli("query", "--json"))
    assert len(everything["events"]) == 4
    assert "tags" not in everything["events"][3]  # an untagged event reads as before
    table = cli("query", "--tag", "course:math").output
    assert "student:bob" in table
    assert "head 4" in table


def test_bad_tags_are_usage_errors_and_nothing_is_stored(cli: Invoke) -> None:
    out = cli("append", "c", "Subscribed", "{}", "--tag", " padded", expect=2).output
    assert "whitespace" in out
    cli("query", "--tag", "", expect=2)
    assert as_json(cli("query", "--json"))["events"] == []
