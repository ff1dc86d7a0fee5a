"""Conditional appends (DCB) raced by 8 OS processes on one PostgreSQL store (see
tests/dcb_races.py): one username, one winner, every round; course capacities and student
limits never exceeded, no subscription lost."""

from __future__ import annotations

from pathlib import Path

import pytest

import dcb_races
import eventkeep
from pg_fixtures import PgServer, fresh_store_url

pytestmark = pytest.mark.slow

ROUNDS = 200


def test_eight_processes_claim_one_username_and_exactly_one_wins_every_round(
    tmp_path: Path, pg_server: PgServer, request: pytest.FixtureRequest
) -> None:
    url = fresh_store_url(request, pg_server)
    eventkeep.open_store(url).close()
    results = dcb_races.race(dcb_races.claim_usernames, url, ROUNDS, tmp_path)
    with eventkeep.open_store(url) as store:
        dcb_races.check_usernames(store, results, ROUNDS)


def test_eight_processes_subscribe_students_within_capacities_and_limits(
    tmp_path: Path, pg_server: PgServer, request: pytest.FixtureRequest
) -> None:
    url = fresh_store_url(request, pg_server)
    with eventkeep.open_store(url) as store:
        dcb_races.define_courses(store)
    results = dcb_races.race(dcb_races.subscribe_students, url, 40, tmp_path)
    with eventkeep.open_store(url) as store:
        retried = dcb_races.check_courses(store, results)
        assert retried > 0, "no append lost a race: the test raced nothing"
