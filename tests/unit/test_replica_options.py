"""The replica options are checked before anything connects (no server needed)."""

from __future__ import annotations

import pytest

pytest.importorskip("psycopg")

import eventkeep
from eventkeep import ConfigurationError
from eventkeep.backends.postgres.replica import lsn_number, record_end

PRIMARY = "postgresql://app:pw@127.0.0.1:1/app"


def test_wal_positions_compare_as_numbers() -> None:
    assert lsn_number("0/0") == 0
    assert lsn_number("0/16B3748") == 0x16B3748
    assert lsn_number("1/0") > lsn_number("0/FFFFFFFF")
    assert lsn_number(None) > lsn_number("FFFFFFFF/FFFFFFFF")  # not a standby: all replayed


def test_an_insert_position_past_a_page_header_stands_for_the_record_that_ended_at_the_page() -> (
    None
):
    page = 8192
    assert record_end(5 * page + 24) == 5 * page  # a short page header
    assert record_end(16 * 1024 * 1024 + 40) == 16 * 1024 * 1024  # a segment's long header
    assert record_end(5 * page + 40) == 5 * page + 40  # inside a page: a record's end
    assert record_end(5 * page + 1000) == 5 * page + 1000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"read_url": "postgresql://r/app", "read_host": "r"}, "not both"),
        ({"read_url": "sqlite:///x.db"}, "postgresql:// URL of a replica"),
        ({"read_url": ""}, "read_url must be a str"),
        ({"read_host": ""}, "read_host must be a host name"),
        ({"read_url": "postgresql://r/app", "replica_wait": -1}, "replica_wait must be"),
        ({"read_host": "r", "replica_wait": True}, "replica_wait must be"),
    ],
)
def test_bad_replica_options_are_refused_before_connecting(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        eventkeep.open_store(PRIMARY, connect_timeout=1, **options)


def test_a_malformed_read_url_is_refused_without_showing_its_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        eventkeep.open_store(PRIMARY, read_url="postgresql://app:S3cret%zz@replica/app")
    assert "S3cret" not in str(info.value)
