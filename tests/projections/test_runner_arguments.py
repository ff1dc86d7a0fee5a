"""Runner arguments are checked up front: a ValidationError, never a lease of NaN seconds or a
run whose NaN timeout never ends."""

from __future__ import annotations

import math
from typing import Any

import pytest

import eventkeep
from eventkeep import ValidationError
from eventkeep.projections import Projection
from eventkeep.projections.runner import Runner


class Quiet(Projection):
    name = "test.quiet-runner-arguments"


@pytest.mark.parametrize(
    "options",
    [
        {"lease_ttl": math.nan},
        {"lease_ttl": math.inf},
        {"lease_ttl": 0},
        {"lease_ttl": "5"},
        {"lease_ttl": True},
        {"retry": 3},
    ],
    ids=["ttl-NaN", "ttl-infinity", "ttl-0", "ttl-str", "ttl-bool", "retry-int"],
)
def test_bad_runner_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Runner(eventkeep.open_store("memory://"), [Quiet()], **options)


@pytest.mark.parametrize(
    "projections", [Quiet(), [Quiet, "x"], [None]], ids=["single", "class", "None"]
)
def test_runner_takes_a_list_of_projection_instances(projections: Any) -> None:
    with pytest.raises(ValidationError):
        Runner(eventkeep.open_store("memory://"), projections)


@pytest.mark.parametrize(
    "timeout", [math.nan, math.inf, -1, "1"], ids=["NaN", "inf", "negative", "str"]
)
def test_run_refuses_a_timeout_that_is_not_finite_seconds(timeout: Any) -> None:
    runner = Runner(eventkeep.open_store("memory://"), [Quiet()])
    with pytest.raises(ValidationError):
        runner.run(until_caught_up=False, timeout=timeout)
