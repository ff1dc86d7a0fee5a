"""Temporal queries: load at a version or a time, with and without snapshots; history."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from eventkeep import EventStore, NotFoundError, Repository, ValidationError
from eventkeep.examples.bank import (
    AccountOpened,
    BankAccount,
    Deposit,
    Deposited,
    OpenAccount,
    Withdrawn,
    account_decider,
)

AMOUNTS = ["10.00", "20.00", "30.00", "40.00", "50.00"]


def build(store: EventStore, *, snapshot_every: int | None) -> Repository[BankAccount]:
    """alice: opened, then one deposit per save (versions 2..6), with distinct times."""
    accounts = Repository(
        store, BankAccount, snapshot_every=snapshot_every, snapshots=snapshot_every is not None
    )
    account = accounts.create("alice")
    account.open(owner="Alice")
    accounts.save(account)
    for amount in AMOUNTS:
        time.sleep(0.002)
        account.deposit(Decimal(amount))
        accounts.save(account)
    return accounts


def balance_at(version: int) -> Decimal:
    return sum((Decimal(a) for a in AMOUNTS[: version - 1]), Decimal(0))


@pytest.mark.parametrize("snapshot_every", [None, 1, 2])
def test_load_at_a_version_with_and_without_snapshots(
    store: EventStore, snapshot_every: int | None
) -> None:
    accounts = build(store, snapshot_every=snapshot_every)
    for version in range(1, 7):
        account = accounts.load("alice", at_version=version)
        assert (account.version, account.balance) == (version, balance_at(version))


def test_a_snapshot_newer_than_the_requested_version_is_never_used(store: EventStore) -> None:
    accounts = build(store, snapshot_every=1)
    assert store.load_snapshot("bankaccount-alice").version == 6  # type: ignore[union-attr]
    store.delete_snapshots("bankaccount-")
    store.save_snapshot("bankaccount-alice", 6, "BankAccount", 1, b'{"balance": "999"}')
    past = accounts.load("alice", at_version=5)
    assert past.balance == balance_at(5)
    assert accounts.load("alice").balance == Decimal("999")  # the cache is trusted at head


@pytest.mark.parametrize("snapshot_every", [None, 2])
def test_load_as_of_a_time_with_and_without_snapshots(
    store: EventStore, snapshot_every: int | None
) -> None:
    accounts = build(store, snapshot_every=snapshot_every)
    recorded = list(store.read_stream("bankaccount-alice"))
    for event in recorded:
        account = accounts.load("alice", as_of=event.recorded_at)
        assert (account.version, account.balance) == (event.version, balance_at(event.version))
        just_before = event.recorded_at - timedelta(microseconds=1)
        if event.version > 1:
            earlier = accounts.load("alice", as_of=just_before)
            assert earlier.version == event.version - 1
    later = accounts.load("alice", as_of=datetime.now(UTC) + timedelta(days=1))
    assert later.version == 6
    with pytest.raises(NotFoundError, match="had no events yet"):
        accounts.load("alice", as_of=recorded[0].recorded_at - timedelta(microseconds=1))


def test_as_of_accepts_any_timezone(store: EventStore) -> None:
    accounts = build(store, snapshot_every=None)
    third = list(store.read_stream("bankaccount-alice"))[2].recorded_at
    elsewhere = third.astimezone(datetime.now().astimezone().tzinfo)
    assert accounts.load("alice", as_of=elsewhere).version == 3


def test_temporal_arguments_are_checked(store: EventStore) -> None:
    accounts = build(store, snapshot_every=None)
    with pytest.raises(NotFoundError, match="no version 7"):
        accounts.load("alice", at_version=7)
    with pytest.raises(ValidationError, match="at_version"):
        accounts.load("alice", at_version=0)
    with pytest.raises(ValidationError, match="timezone-aware"):
        accounts.load("alice", as_of=datetime.now())
    with pytest.raises(ValidationError, match="as_of must be a datetime"):
        accounts.load("alice", as_of="yesterday")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not both"):
        accounts.load("alice", at_version=1, as_of=datetime.now(UTC))
    with pytest.raises(NotFoundError):
        accounts.load("nobody", as_of=datetime.now(UTC))


def test_history_shows_every_version_with_its_time_event_and_state(store: EventStore) -> None:
    accounts = build(store, snapshot_every=2)
    account = accounts.load("alice")
    account.withdraw(Decimal("100.00"))
    accounts.save(account)
    entries = list(accounts.history("alice"))
    assert [e.version for e in entries] == [1, 2, 3, 4, 5, 6, 7]
    assert [type(e.event) for e in entries] == [AccountOpened] + [Deposited] * 5 + [Withdrawn]
    assert [e.state.balance for e in entries] == [balance_at(v) for v in range(1, 7)] + [
        Decimal("50.00")
    ]
    assert all(e.state.version == e.version for e in entries)
    times = [e.recorded_at for e in entries]
    assert times == sorted(times)
    assert times == [r.recorded_at for r in store.read_stream("bankaccount-alice")]
    assert entries[3].recorded.stream_id == "bankaccount-alice"
    entries[0].state.balance = Decimal("-1")  # each state is an independent copy
    assert entries[1].state.balance == Decimal("10.00")


@pytest.mark.parametrize("snapshot_every", [None, 2])
def test_history_can_show_a_range_of_versions(
    store: EventStore, snapshot_every: int | None
) -> None:
    accounts = build(store, snapshot_every=snapshot_every)
    entries = list(accounts.history("alice", from_version=4, to_version=5))
    assert [(e.version, e.state.balance) for e in entries] == [
        (4, balance_at(4)),
        (5, balance_at(5)),
    ]
    assert [e.version for e in accounts.history("alice", from_version=6)] == [6]
    assert list(accounts.history("alice", from_version=9)) == []
    with pytest.raises(ValidationError):
        accounts.history("alice", from_version=0)


def test_history_of_a_missing_aggregate_raises_at_once(store: EventStore) -> None:
    with pytest.raises(NotFoundError):
        Repository(store, BankAccount).history("nobody")


def test_a_decider_has_history_and_temporal_loads_too(store: EventStore) -> None:
    accounts = Repository(store, account_decider)
    accounts.handle("bob", OpenAccount(owner="Bob"))
    accounts.handle("bob", Deposit(Decimal("3.00")))
    accounts.handle("bob", Deposit(Decimal("4.00")))
    assert [e.state.state.balance for e in accounts.history("bob")] == [
        Decimal("0"),
        Decimal("3.00"),
        Decimal("7.00"),
    ]
    assert accounts.load("bob", at_version=2).state.balance == Decimal("3.00")
