"""The repository: load, create, save atomically with expected versions, stream naming."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from eventkeep import (
    Aggregate,
    ConcurrencyError,
    ConfigurationError,
    Event,
    EventStore,
    NotFoundError,
    Repository,
    StreamAppend,
    ValidationError,
    applies,
)
from eventkeep.examples.bank import BankAccount, Deposited, InsufficientFundsError, transfer


class Posted(Event):
    __event_type__ = "repotest.Posted"
    text: str


class Ledger(Aggregate):
    entries: tuple[str, ...] = ()

    def post(self, text: str) -> None:
        self.record(Posted(text=text))

    @applies(Posted)
    def _posted(self, event: Posted) -> None:
        self.entries = (*self.entries, event.text)


def open_account(accounts: Repository[BankAccount], account_id: str, amount: str) -> BankAccount:
    account = accounts.create(account_id)
    account.open(owner=account_id.title())
    account.deposit(Decimal(amount))
    accounts.save(account)
    return account


def test_loading_a_missing_aggregate_raises_not_found(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    with pytest.raises(NotFoundError, match=r"BankAccount 'nobody' not found.*bankaccount-nobody"):
        accounts.load("nobody")
    with pytest.raises(LookupError):
        accounts.load("nobody")
    assert not accounts.exists("nobody")


def test_a_saved_aggregate_loads_back_with_its_state_and_version(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    open_account(accounts, "alice", "100.00")
    alice = accounts.load("alice")
    assert (alice.owner, alice.balance, alice.is_open, alice.version) == (
        "Alice",
        Decimal("100.00"),
        True,
        2,
    )
    assert [r.type for r in store.read_stream("bankaccount-alice")] == [
        "bank.AccountOpened",
        "bank.Deposited",
    ]


def test_streams_are_named_by_category_and_the_naming_is_configurable(store: EventStore) -> None:
    default = Repository(store, BankAccount)
    assert default.stream_id("alice") == "bankaccount-alice"
    custom = Repository(store, BankAccount, category="acct", separator=":")
    assert custom.stream_id("alice") == "acct:alice"
    open_account(custom, "alice", "5.00")
    open_account(custom, "bob", "6.00")
    assert store.stream_version("acct:alice") == 2
    assert custom.ids() == ["alice", "bob"]
    assert default.ids() == []
    assert custom.load("bob").balance == Decimal("6.00")
    account_id = uuid.uuid4()
    assert default.stream_id(account_id) == f"bankaccount-{account_id}"


def test_a_category_holding_the_separator_is_refused(store: EventStore) -> None:
    with pytest.raises(ConfigurationError, match="must not contain the separator"):
        Repository(store, BankAccount, category="bank-account")
    with pytest.raises(ConfigurationError, match="separator"):
        Repository(store, BankAccount, separator="")


def test_a_repository_takes_an_aggregate_class_or_a_decider(store: EventStore) -> None:
    with pytest.raises(ConfigurationError, match="Aggregate subclass or a Decider"):
        Repository(store, int)  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError, match="Aggregate subclass or a Decider"):
        Repository(store, Aggregate)
    with pytest.raises(ConfigurationError, match="EventStore"):
        Repository("memory://", BankAccount)  # type: ignore[call-overload]


def test_save_expects_the_version_the_aggregate_was_loaded_at(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    open_account(accounts, "alice", "100.00")
    first, second = accounts.load("alice"), accounts.load("alice")
    second.deposit(Decimal("1.00"))
    accounts.save(second)
    first.withdraw(Decimal("100.00"))
    with pytest.raises(ConcurrencyError) as caught:
        accounts.save(first)
    assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == (
        "bankaccount-alice",
        2,
        3,
    )
    assert accounts.load("alice").balance == Decimal("101.00")
    assert first.pending_events  # still pending: the caller decides what to do


def test_saving_a_new_aggregate_over_an_existing_stream_is_a_conflict(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    open_account(accounts, "alice", "1.00")
    with pytest.raises(ConcurrencyError):
        open_account(accounts, "alice", "2.00")


def test_save_of_several_aggregates_is_one_transaction(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    open_account(accounts, "alice", "100.00")
    open_account(accounts, "bob", "0.01")
    stale_bob = accounts.load("bob")
    bob = accounts.load("bob")
    bob.deposit(Decimal("1.00"))
    accounts.save(bob)
    alice = accounts.load("alice")
    alice.withdraw(Decimal("10.00"))
    stale_bob.deposit(Decimal("10.00"))
    with pytest.raises(ConcurrencyError, match="bankaccount-bob"):
        accounts.save(alice, stale_bob)
    assert store.stream_version("bankaccount-alice") == 2  # alice's withdrawal was not written
    results = accounts.save(accounts.load("alice"), accounts.load("bob"))
    assert results == []  # nothing pending: nothing to do


def test_transfer_moves_money_between_two_accounts_atomically(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    open_account(accounts, "alice", "100.00")
    open_account(accounts, "bob", "5.00")
    reference = transfer(accounts, "alice", "bob", Decimal("30.00"))
    alice, bob = accounts.load("alice"), accounts.load("bob")
    assert (alice.balance, bob.balance) == (Decimal("70.00"), Decimal("35.00"))
    last = [next(store.read_stream(s, backwards=True, limit=1)) for s in ("bankaccount-alice",)]
    assert last[0].event.reference == reference  # type: ignore[union-attr]
    with pytest.raises(InsufficientFundsError):
        transfer(accounts, "bob", "alice", Decimal("1000.00"))
    assert store.stream_version("bankaccount-alice") == 3


def test_the_same_aggregate_passed_twice_is_saved_once(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    alice = accounts.create("alice")
    alice.open(owner="Alice")
    results = accounts.save(alice, alice)
    assert len(results) == 1
    assert alice.version == 1


def test_aggregates_of_another_type_are_saved_in_the_same_transaction(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    alice = open_account(accounts, "alice", "10.00")
    ledger = Ledger("main")
    alice.withdraw(Decimal("4.00"))
    ledger.post("alice paid 4.00")
    results = accounts.save(alice, ledger)
    assert [r.stream_id for r in results] == ["bankaccount-alice", "ledger-main"]
    assert Repository(store, Ledger).load("main").entries == ("alice paid 4.00",)
    with pytest.raises(ValidationError, match="takes aggregates"):
        accounts.save("alice")  # type: ignore[arg-type]


def test_get_or_create_returns_the_stored_aggregate_or_a_new_one(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    fresh = accounts.get_or_create("carol")
    assert (fresh.version, fresh.is_open) == (0, False)
    fresh.open(owner="Carol")
    accounts.save(fresh)
    again = accounts.get_or_create("carol")
    assert (again.version, again.owner) == (1, "Carol")


def test_resending_a_save_whose_outcome_was_lost_writes_nothing_twice(store: EventStore) -> None:
    """Event ids are given when events are recorded, so a resent save is idempotent."""
    accounts = Repository(store, BankAccount)
    alice = open_account(accounts, "alice", "10.00")
    alice.deposit(Decimal("1.00"))
    alice.deposit(Decimal("2.00"))
    # The first attempt reached the store, but the caller never learnt it did.
    store.append_many([StreamAppend("bankaccount-alice", list(alice._ek_pending), 2)])
    results = accounts.save(alice)
    assert results[0].versions == (3, 4)
    assert store.stream_version("bankaccount-alice") == 4
    assert accounts.load("alice").balance == Decimal("13.00")


def test_an_aggregate_id_is_a_non_empty_string_or_a_uuid(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    with pytest.raises(ValidationError):
        accounts.load("")
    with pytest.raises(ValidationError):
        accounts.load(7)  # type: ignore[arg-type]


def test_stored_events_keep_their_types_through_the_repository(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    open_account(accounts, "alice", "10.00")
    events = [r.event for r in store.read_stream("bankaccount-alice")]
    assert events[1] == Deposited(amount=Decimal("10.00"), currency="EUR")


class Marker(Aggregate):
    """An aggregate whose handler is an ordinary function with a side effect counter."""

    __category__ = "repotestmarker"
    posted: int = 0

    @applies(Posted)
    def _posted(self, event: Posted) -> None:
        self.posted += 1


def test_repr_names_the_aggregate_and_category(store: EventStore) -> None:
    assert repr(Repository(store, Marker)) == "Repository(Marker, category='repotestmarker')"
