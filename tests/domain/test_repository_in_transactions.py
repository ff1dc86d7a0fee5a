"""A repository works inside a store transaction: ``Repository(tx, Account)`` loads what the
transaction wrote, saves with the event ids and metadata that ``record()`` gave, and everything
(events, snapshots) commits or rolls back with the transaction. Every backend."""

from __future__ import annotations

from decimal import Decimal

import pytest

import eventkeep
from eventkeep import EventStore, Repository, ValidationError
from eventkeep.examples.bank import BankAccount


class Rollback(Exception):
    pass


def open_account(repo: Repository[BankAccount], account_id: str, amount: str) -> BankAccount:
    account = repo.create(account_id)
    account.open(owner=account_id.upper())
    account.deposit(Decimal(amount))
    return account


def test_a_save_inside_a_transaction_keeps_the_ids_and_metadata_record_gave(
    store: EventStore,
) -> None:
    with store.transaction() as tx:
        repo = Repository(tx, BankAccount)
        with eventkeep.command_context(correlation_id="teller-9"):
            account = open_account(repo, "ada", "10.00")
        pending = list(account._ek_pending)
        repo.save(account)
        loaded = repo.load("ada")  # reads inside the transaction see its writes
        assert loaded.version == 2
    stored = list(store.read_stream("bankaccount-ada"))
    assert [e.event_id for e in stored] == [p.event_id for p in pending]
    assert {e.metadata.get("correlation_id") for e in stored} == {"teller-9"}


def test_a_rolled_back_transaction_takes_the_repositorys_events_and_snapshots_with_it(
    store: EventStore,
) -> None:
    repo = Repository(store, BankAccount, snapshot_every=1)
    repo.save(open_account(repo, "bob", "5.00"))
    before = store.load_snapshot("bankaccount-bob")

    def deposit_then_fail() -> None:
        with store.transaction() as tx:
            inner = Repository(tx, BankAccount, snapshot_every=1)
            account = inner.load("bob")
            account.deposit(Decimal("1.00"))
            inner.save(account)  # its policy writes a snapshot, in the transaction
            assert tx.load_snapshot("bankaccount-bob") != before
            raise Rollback

    with pytest.raises(Rollback):
        deposit_then_fail()
    assert store.stream_version("bankaccount-bob") == 2
    assert store.load_snapshot("bankaccount-bob") == before
    assert repo.load("bob").balance == Decimal("5.00")


def test_a_transaction_is_refused_after_it_ended_and_on_another_thread(
    store: EventStore,
) -> None:
    import threading

    errors: list[BaseException] = []
    with store.transaction() as tx:
        repo = Repository(tx, BankAccount)

        def use_elsewhere() -> None:
            try:
                tx.stream_version("x")
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=use_elsewhere)
        thread.start()
        thread.join(timeout=60)
    assert len(errors) == 1
    assert isinstance(errors[0], ValidationError)
    assert "thread" in str(errors[0])
    with pytest.raises(ValidationError, match="ended"):
        repo.load("anyone")
