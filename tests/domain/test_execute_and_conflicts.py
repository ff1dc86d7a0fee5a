"""Concurrent writers: execute() reloads and retries; an opt-in rule merges what does not clash."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from eventkeep import (
    Aggregate,
    ConcurrencyError,
    Event,
    EventStore,
    NotFoundError,
    RecordedEvent,
    Repository,
    ValidationError,
    applies,
    conflicts_by_key,
)
from eventkeep.examples.bank import BankAccount, InsufficientFundsError


class TitleChanged(Event):
    __event_type__ = "conftest.TitleChanged"
    title: str


class BodyChanged(Event):
    __event_type__ = "conftest.BodyChanged"
    body: str


class Document(Aggregate):
    __category__ = "conftestdoc"

    title: str = ""
    body: str = ""

    def retitle(self, title: str) -> None:
        self.record(TitleChanged(title=title))

    def rewrite(self, body: str) -> None:
        self.record(BodyChanged(body=body))

    @applies(TitleChanged)
    def _titled(self, event: TitleChanged) -> None:
        self.title = event.title

    @applies(BodyChanged)
    def _bodied(self, event: BodyChanged) -> None:
        self.body = event.body


def opened(store: EventStore, balance: str = "100.00") -> Repository[BankAccount]:
    accounts = Repository(store, BankAccount)
    account = accounts.create("alice")
    account.open(owner="Alice")
    account.deposit(Decimal(balance))
    accounts.save(account)
    return accounts


def sneak_in_deposit(accounts: Repository[BankAccount], amount: str = "1.00") -> None:
    """Another user's write, landing between our load and our save."""
    other = accounts.load("alice")
    other.deposit(Decimal(amount))
    accounts.save(other)


def test_execute_loads_runs_the_command_and_saves(store: EventStore) -> None:
    accounts = opened(store)
    result = accounts.execute("alice", lambda a: a.withdraw(Decimal("40.00")) or "done")
    assert result == "done"
    assert accounts.load("alice").balance == Decimal("60.00")


def test_execute_reloads_and_retries_after_a_concurrent_write(store: EventStore) -> None:
    accounts = opened(store)
    seen: list[tuple[int, Decimal]] = []

    def withdraw(account: BankAccount) -> None:
        seen.append((account.version, account.balance))
        if len(seen) == 1:
            sneak_in_deposit(accounts)
        account.withdraw(Decimal("100.00"))

    accounts.execute("alice", withdraw)
    assert seen == [(2, Decimal("100.00")), (3, Decimal("101.00"))]
    assert accounts.load("alice").balance == Decimal("1.00")


def test_execute_gives_up_after_its_retries(store: EventStore) -> None:
    accounts = opened(store)
    calls = 0

    def always_interrupted(account: BankAccount) -> None:
        nonlocal calls
        calls += 1
        sneak_in_deposit(accounts)
        account.withdraw(Decimal("1.00"))

    with pytest.raises(ConcurrencyError):
        accounts.execute("alice", always_interrupted, retries=2)
    assert calls == 3
    with pytest.raises(ValidationError):
        accounts.execute("alice", always_interrupted, retries=-1)


@pytest.mark.parametrize(
    ("command", "options"),
    [(None, {}), ("withdraw", {}), (lambda a: None, {"create": "yes"})],
    ids=["None", "str", "create-str"],
)
def test_execute_refuses_a_command_that_is_not_callable(
    store: EventStore, command: object, options: dict[str, object]
) -> None:
    accounts = opened(store)
    head = store.head_position()
    with pytest.raises(ValidationError):
        accounts.execute("alice", command, **options)  # type: ignore[arg-type]
    assert store.head_position() == head


def test_execute_does_not_retry_a_refused_command(store: EventStore) -> None:
    accounts = opened(store)
    calls = 0

    def overdraw(account: BankAccount) -> None:
        nonlocal calls
        calls += 1
        account.withdraw(Decimal("1000.00"))

    with pytest.raises(InsufficientFundsError):
        accounts.execute("alice", overdraw)
    assert calls == 1
    assert store.stream_version("bankaccount-alice") == 2


def test_execute_creates_the_aggregate_only_when_asked(store: EventStore) -> None:
    accounts = Repository(store, BankAccount)
    with pytest.raises(NotFoundError):
        accounts.execute("bob", lambda a: a.open(owner="Bob"))
    accounts.execute("bob", lambda a: a.open(owner="Bob"), create=True)
    assert accounts.load("bob").owner == "Bob"


def test_a_rule_lets_non_conflicting_edits_through_without_rerunning_the_command(
    store: EventStore,
) -> None:
    documents = Repository(store, Document, conflicts=conflicts_by_key(type))
    draft = documents.create("d1")
    draft.retitle("Draft")
    draft.rewrite("...")
    documents.save(draft)

    mine, theirs = documents.load("d1"), documents.load("d1")
    theirs.retitle("Their title")
    documents.save(theirs)
    mine.rewrite("My body")
    calls = 0

    def rewrite(document: Document) -> None:
        nonlocal calls
        calls += 1
        document.rewrite("My body")

    results = documents.save(mine)
    assert results[0].versions == (4,)
    assert (mine.title, mine.body, mine.version) == ("Their title", "My body", 4)
    assert mine.pending_events == []
    loaded = documents.load("d1")
    assert (loaded.title, loaded.body) == ("Their title", "My body")

    sneak = True

    def rewrite_with_a_concurrent_title(document: Document) -> None:
        nonlocal sneak
        rewrite(document)
        if sneak:
            sneak = False
            other = documents.load("d1")
            other.retitle("Another title")
            documents.save(other)

    documents.execute("d1", rewrite_with_a_concurrent_title)
    assert calls == 1  # merged, not re-run
    assert documents.load("d1").title == "Another title"


def test_a_true_conflict_is_still_a_conflict(store: EventStore) -> None:
    documents = Repository(store, Document, conflicts=conflicts_by_key(type))
    mine, theirs = documents.create("d1"), documents.create("d1")
    theirs.retitle("Theirs")
    documents.save(theirs)
    mine.retitle("Mine")
    with pytest.raises(ConcurrencyError):
        documents.save(mine)
    assert documents.load("d1").title == "Theirs"


def test_execute_falls_back_to_rerunning_the_command_on_a_true_conflict(
    store: EventStore,
) -> None:
    documents = Repository(store, Document, conflicts=conflicts_by_key(type))
    documents.execute("d1", lambda d: d.retitle("First"), create=True)
    titles: list[str] = []

    def retitle(document: Document) -> None:
        titles.append(document.title)
        if len(titles) == 1:
            other = documents.load("d1")
            other.retitle("Concurrent")
            documents.save(other)
        document.retitle(f"after {document.title}")

    documents.execute("d1", retitle)
    assert titles == ["First", "Concurrent"]
    assert documents.load("d1").title == "after Concurrent"


def test_the_rule_sees_our_events_and_every_concurrent_one(store: EventStore) -> None:
    seen: list[tuple[list[Event], list[int]]] = []
    documents = Repository(store, Document)

    def rule(ours: Sequence[Event], theirs: Sequence[RecordedEvent]) -> bool:
        seen.append((list(ours), [recorded.version for recorded in theirs]))
        if len(seen) == 1:  # yet another writer gets in before our second try
            late = documents.load("d1")
            late.retitle("late")
            documents.save(late)
        return False

    merging = Repository(store, Document, conflicts=rule)
    mine = merging.create("d1")
    mine.rewrite("mine")
    for title in ("a", "b"):
        other = documents.get_or_create("d1")
        other.retitle(title)
        documents.save(other)
    merging.save(mine)
    assert seen == [([BodyChanged(body="mine")], [1, 2]), ([BodyChanged(body="mine")], [3])]
    assert [r.type for r in store.read_stream("conftestdoc-d1")] == [
        "conftest.TitleChanged",
        "conftest.TitleChanged",
        "conftest.TitleChanged",
        "conftest.BodyChanged",
    ]
    assert (mine.title, mine.body, mine.version) == ("late", "mine", 4)


def test_a_multi_stream_save_merges_the_stream_that_moved(store: EventStore) -> None:
    documents = Repository(store, Document, conflicts=conflicts_by_key(type))
    for name in ("d1", "d2"):
        documents.execute(name, lambda d: d.retitle("t"), create=True)
    one, two = documents.load("d1"), documents.load("d2")
    concurrent = documents.load("d2")
    concurrent.retitle("moved")
    documents.save(concurrent)
    one.rewrite("b1")
    two.rewrite("b2")
    results = documents.save(one, two)
    assert [r.version for r in results] == [2, 3]
    assert (two.title, two.body) == ("moved", "b2")
    assert (one.title, one.body) == ("t", "b1")


def test_the_rule_never_merges_an_aggregate_of_another_type(store: EventStore) -> None:
    documents = Repository(store, Document, conflicts=lambda ours, theirs: False)
    accounts = opened(store)
    account = accounts.load("alice")
    sneak_in_deposit(accounts)
    account.deposit(Decimal("1.00"))
    document = documents.create("d1")
    document.retitle("t")
    with pytest.raises(ConcurrencyError, match="bankaccount-alice"):
        documents.save(document, account)
    assert store.stream_version("conftestdoc-d1") == 0
