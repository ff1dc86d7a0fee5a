"""Correlation and causation ids flow from a command context into every recorded event."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest

from eventkeep import (
    EventStore,
    Repository,
    ValidationError,
    command_context,
    current_context,
)
from eventkeep.examples.bank import AccountOpened, BankAccount


def metadata_of(store: EventStore, stream_id: str) -> list[dict[str, object]]:
    return [recorded.metadata for recorded in store.read_stream(stream_id)]


def test_events_recorded_under_a_context_carry_its_ids(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    account = accounts.create("alice")
    account.open(owner="Alice")
    with command_context(correlation_id="req-1", causation_id="cmd-1", user="teller"):
        account.deposit(Decimal("5.00"))
        account.deposit(Decimal("6.00"))
    account.deposit(Decimal("7.00"))
    accounts.save(account)
    assert metadata_of(store, "bankaccount-alice") == [
        {},
        {"correlation_id": "req-1", "causation_id": "cmd-1", "user": "teller"},
        {"correlation_id": "req-1", "causation_id": "cmd-1", "user": "teller"},
        {},
    ]
    recorded = list(store.read_stream("bankaccount-alice"))[1]
    assert (recorded.correlation_id, recorded.causation_id) == ("req-1", "cmd-1")


def test_the_ids_flow_through_execute_and_its_retries(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    accounts.execute("bob", lambda a: a.open(owner="Bob"), create=True)
    attempts = 0

    def deposit(account: BankAccount) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            with command_context(correlation_id="someone-else"):
                accounts.execute("bob", lambda a: a.deposit(Decimal("1.00")))
        account.deposit(Decimal("2.00"))

    with command_context(correlation_id="req-2"):
        accounts.execute("bob", deposit)
    assert attempts == 2
    correlations = [m.get("correlation_id") for m in metadata_of(store, "bankaccount-bob")]
    assert correlations == [None, "someone-else", "req-2"]


def test_a_nested_context_inherits_what_it_does_not_set() -> None:
    assert current_context() is None
    with command_context(correlation_id="outer", causation_id="c0", tenant="t1") as outer:
        assert current_context() is outer
        with command_context(causation_id="c1", user="u") as inner:
            assert inner.metadata() == {
                "correlation_id": "outer",
                "causation_id": "c1",
                "tenant": "t1",
                "user": "u",
            }
        with command_context() as bare:
            assert (bare.correlation_id, bare.causation_id) == ("outer", "c0")
        assert current_context() is outer
    assert current_context() is None


def test_a_context_without_ids_gets_a_fresh_correlation_id() -> None:
    with command_context() as context:
        assert uuid.UUID(context.correlation_id)
        assert context.causation_id is None
        assert context.metadata() == {"correlation_id": context.correlation_id}


def test_caused_by_continues_the_story_of_a_stored_event(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    with command_context(correlation_id="story"):
        accounts.execute("carol", lambda a: a.open(owner="Carol"), create=True)
    opened = next(store.read_stream("bankaccount-carol"))
    with command_context(caused_by=opened):
        accounts.execute("carol", lambda a: a.deposit(Decimal("1.00")))
    reaction = list(store.read_stream("bankaccount-carol"))[1]
    assert reaction.correlation_id == "story"
    assert reaction.causation_id == str(opened.event_id)

    store.append("other-1", [next(store.read_stream("bankaccount-carol")).event])
    uncorrelated = next(store.read_stream("other-1"))
    with command_context(caused_by=uncorrelated) as context:
        assert context.correlation_id == str(uncorrelated.event_id)
    with (
        pytest.raises(ValidationError, match="RecordedEvent"),
        command_context(caused_by="nope"),  # type: ignore[arg-type]
    ):
        pass


def test_explicit_metadata_is_merged_with_the_context(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    account = accounts.create("dave")
    with command_context(correlation_id="req-3"):
        account.record(
            AccountOpened(owner="Dave"),
            metadata={"source": "import", "correlation_id": "override"},
        )
    accounts.save(account)
    assert metadata_of(store, "bankaccount-dave") == [
        {"correlation_id": "override", "source": "import"}
    ]


def test_a_context_stays_in_its_thread() -> None:
    seen: list[object] = []
    with command_context(correlation_id="main-thread"):
        worker = threading.Thread(target=lambda: seen.append(current_context()))
        worker.start()
        worker.join()
    assert seen == [None]


def test_context_ids_are_checked() -> None:
    with (
        pytest.raises(ValidationError, match="correlation_id must be"),
        command_context(correlation_id=""),
    ):
        pass
    with (
        pytest.raises(ValidationError, match="causation_id must be"),
        command_context(
            causation_id=7  # type: ignore[arg-type]
        ),
    ):
        pass
