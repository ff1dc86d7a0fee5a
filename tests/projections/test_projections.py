"""Projections fed by a runner: exactly-once SQL read models, at-least-once external ones,
failures, retries and skips, rebuilds, status, reactors and inline projections."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from bank_check import (
    check_transfers,
    scratch_balances,
    scratch_daily,
    stored_balances,
    stored_daily,
    table,
)
from projection_harness import open_bank

import eventkeep
from eventkeep import EventStore, RawEvent, StreamAppend, ValidationError
from eventkeep.examples.bank import BankAccount, Deposited
from eventkeep.examples.bank.readmodels import AccountBalances, DailyTransactions
from eventkeep.examples.bank.transfers import TransferProcessor, request_transfer
from eventkeep.projections import (
    HandlerContext,
    Projection,
    RetryPolicy,
    Runner,
    SQLProjection,
    apply_inline,
    handles,
    projection_status,
    request_rebuild,
    reset_projection,
    retry_projection,
    skip_event,
)

FAST_RETRY = RetryPolicy(first=0.01, factor=2.0, longest=0.05)


def run(store: EventStore, *projections: Projection, **options: Any) -> Runner:
    runner = Runner(store, projections, lease_ttl=options.pop("lease_ttl", 5.0), **options)
    assert runner.run(until_caught_up=True, timeout=30), "the runner did not catch up"
    return runner


def deposit(store: EventStore, account: str, amount: str) -> None:
    eventkeep.Repository(store, BankAccount).execute(account, lambda a: a.deposit(Decimal(amount)))


class Collected(Projection):
    """An external (at-least-once) read model: a Python list."""

    name = "test.collected"
    transactional = False
    seen: ClassVar[list[tuple[int, Any]]] = []

    @handles("Numbered")
    def numbered(self, event: RawEvent, ctx: HandlerContext) -> None:
        type(self).seen.append((ctx.position, event.data["seq"]))


class Poisoned(Projection):
    """Fails on every event whose seq is in ``poison``."""

    name = "test.poisoned"
    transactional = False
    poison: ClassVar[set[int]] = set()
    handled: ClassVar[list[int]] = []

    @handles("Numbered")
    def numbered(self, event: RawEvent, ctx: HandlerContext) -> None:
        if event.data["seq"] in self.poison:
            raise ValueError(f"cannot handle seq {event.data['seq']}")
        type(self).handled.append(ctx.position)


@pytest.fixture(autouse=True)
def _clean() -> None:
    Collected.seen = []
    Poisoned.handled = []
    Poisoned.poison = set()


def numbered(store: EventStore, count: int, start: int = 0) -> None:
    store.append("n-1", [RawEvent("Numbered", {"seq": i}) for i in range(start, start + count)])


# -- exactly-once SQL read models ---------------------------------------------------------------


def test_sql_read_models_equal_a_build_from_scratch(sql_store: EventStore) -> None:
    open_bank(sql_store, ("alice", "bob"))
    deposit(sql_store, "alice", "12.34")
    run(sql_store, AccountBalances(), DailyTransactions())
    deposit(sql_store, "bob", "0.66")
    run(sql_store, AccountBalances(), DailyTransactions())
    assert stored_balances(sql_store) == scratch_balances(sql_store)
    assert stored_balances(sql_store) == [("alice", "ALICE", 101234, 3), ("bob", "BOB", 100066, 3)]
    assert stored_daily(sql_store) == scratch_daily(sql_store)


def test_a_zombie_batch_cannot_commit_after_the_checkpoint_moved(sql_store: EventStore) -> None:
    open_bank(sql_store, ("alice",))
    zombie = Runner(sql_store, [AccountBalances()], owner="zombie", lease_ttl=5)
    zombie.step()  # takes the lease, handles the backlog
    deposit(sql_store, "alice", "1.00")
    job = zombie.jobs[0]
    with sql_store.transaction() as tx:  # someone else handles the deposit meanwhile
        tx.execute("UPDATE account_balances__g1 SET balance_cents = balance_cents + 100")
        tx.save_checkpoint(job.name, 3, expected=2)
    zombie.step()  # its batch is rolled back: the checkpoint is not where it left it
    zombie.step()
    assert stored_balances(sql_store) == [("alice", "ALICE", 100100, 2)]
    assert job.checkpoint == 3


# -- at-least-once external read models ---------------------------------------------------------


def test_an_external_read_model_gets_each_event_with_its_position(store: EventStore) -> None:
    numbered(store, 5)
    store.append("other-1", [RawEvent("Ignored", {})])
    run(store, Collected())
    numbered(store, 2, start=5)
    run(store, Collected())
    assert Collected.seen == [(i + 1, i) for i in range(5)] + [(7, 5), (8, 6)]
    [status] = projection_status(store)
    assert (status.position, status.lag_events) == (8, 0)


# -- failures -----------------------------------------------------------------------------------


def test_a_failing_handler_stops_its_projection_only_and_records_why(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    numbered(store, 6)
    Poisoned.poison = {3}
    runner = Runner(store, [Poisoned(), Collected()], retry=FAST_RETRY)
    runner.run(until=lambda: len(Collected.seen) == 6, timeout=30)
    runner.run(until=lambda: (runner.jobs[0].record or _none).retries >= 3, timeout=30)
    statuses = {s.name: s for s in projection_status(store)}
    failed = statuses["test.poisoned"]
    assert failed.state == "failed"
    assert failed.failing_position == 4
    assert failed.position == 3  # everything before the poison event is done, nothing after
    assert failed.retries >= 3
    assert failed.error == "ValueError: cannot handle seq 3"
    assert statuses["test.collected"].position == 6
    assert Poisoned.handled == [1, 2, 3]
    assert "failed at position 4" in caplog.text


def test_a_retry_succeeds_once_the_cause_is_fixed(store: EventStore) -> None:
    numbered(store, 4)
    Poisoned.poison = {1}
    runner = Runner(store, [Poisoned()], retry=FAST_RETRY)
    runner.run(until=lambda: (runner.jobs[0].record or _none).retries >= 2, timeout=30)
    Poisoned.poison = set()
    run(store, Poisoned(), retry=FAST_RETRY)
    assert Poisoned.handled == [1, 2, 3, 4]
    [status] = projection_status(store)
    assert status.error is None
    assert status.last_error == "ValueError: cannot handle seq 1"


def test_after_max_retries_only_an_operator_moves_it_on(store: EventStore) -> None:
    numbered(store, 3)
    Poisoned.poison = {1}
    policy = RetryPolicy(first=0.01, max_retries=1)
    runner = Runner(store, [Poisoned()], retry=policy)
    runner.run(until=lambda: (runner.jobs[0].record or _none).retry_at == -1, timeout=30)
    assert not runner.run(timeout=0.3)  # no more attempts on its own
    assert projection_status(store)[0].retries == 2
    Poisoned.poison = set()
    retry_projection(store, "test.poisoned")
    run(store, Poisoned(), retry=policy)
    assert Poisoned.handled == [1, 2, 3]


def test_an_operator_can_skip_a_poison_event_explicitly_and_it_is_logged(
    store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    numbered(store, 4)
    Poisoned.poison = {2}
    runner = Runner(store, [Poisoned()], retry=FAST_RETRY)
    runner.run(until=lambda: (runner.jobs[0].record or _none).state == "failed", timeout=30)
    with pytest.raises(ValidationError, match="only the failing event"):
        skip_event(store, "test.poisoned", 2, reason="wrong one")
    with caplog.at_level(logging.WARNING):
        skip_event(store, "test.poisoned", 3, reason="ticket 42")
    assert "the event at position 3 was skipped by " in caplog.text
    assert "(ticket 42)" in caplog.text
    run(store, Poisoned())
    assert Poisoned.handled == [1, 2, 4]
    with store.transaction() as tx:
        data = tx.record("test.poisoned")
    assert data is not None
    assert b"ticket 42" in data


# -- rebuilds -----------------------------------------------------------------------------------


class BalancesV2(AccountBalances):
    version = 2


def test_a_version_bump_rebuilds_into_fresh_tables_while_the_old_ones_serve(
    sql_store: EventStore,
) -> None:
    open_bank(sql_store, ("alice", "bob"))
    run(sql_store, AccountBalances())
    before = stored_balances(sql_store)
    runner = Runner(sql_store, [BalancesV2()], lease_ttl=5)
    runner.step()  # takes the lease, sees version 2, starts the rebuild
    job = runner.jobs[0]
    assert job.rebuilding
    assert projection_status(sql_store)[0].state == "rebuilding"
    # Generation 2 is filled, but not swapped in yet: readers still see generation 1.
    assert table(sql_store, "SELECT count(*) FROM account_balances__g2") == [(2,)]
    with sql_store.transaction() as tx:
        tx.execute("UPDATE account_balances__g1 SET owner = 'OLD'")
    assert {row[1] for row in stored_balances(sql_store)} == {"OLD"}
    assert runner.run(until_caught_up=True, timeout=30)
    assert stored_balances(sql_store) == scratch_balances(sql_store) == before
    [status] = projection_status(sql_store)
    assert (status.version, status.position) == (2, sql_store.head_position())
    with pytest.raises(eventkeep.EventkeepError):
        table(sql_store, "SELECT count(*) FROM account_balances__g1")  # dropped


def test_a_requested_rebuild_replays_an_external_model_in_place(store: EventStore) -> None:
    numbered(store, 3)
    run(store, Collected())
    request_rebuild(store, "test.collected")
    run(store, Collected())
    assert [seq for _, seq in Collected.seen] == [0, 1, 2, 0, 1, 2]
    assert projection_status(store)[0].state in ("stopped", "caught-up")


def test_reset_forgets_the_projection_and_its_tables(sql_store: EventStore) -> None:
    open_bank(sql_store, ("alice",))
    run(sql_store, AccountBalances())
    reset_projection(sql_store, AccountBalances.name)
    assert projection_status(sql_store) == []
    with pytest.raises(eventkeep.EventkeepError):
        stored_balances(sql_store)
    run(sql_store, AccountBalances())
    assert stored_balances(sql_store) == scratch_balances(sql_store)


# -- status -------------------------------------------------------------------------------------


def test_status_shows_position_lag_and_state(store: EventStore) -> None:
    numbered(store, 4)
    run(store, Collected())
    numbered(store, 3, start=4)
    [status] = projection_status(store, "test.collected")
    assert status.state == "stopped"
    assert (status.position, status.head, status.lag_events) == (4, 7, 3)
    assert status.lag_seconds >= 0
    with pytest.raises(eventkeep.NotFoundError):
        projection_status(store, "nobody")


# -- reactors -----------------------------------------------------------------------------------


def test_the_transfer_reactor_acts_once_with_causation_and_correlation(store: EventStore) -> None:
    open_bank(store, ("alice", "bob"), deposit="100.00")
    ok = request_transfer(store, "alice", "bob", Decimal("30.00"))
    too_much = request_transfer(store, "alice", "bob", Decimal("300.00"))
    run(store, TransferProcessor())
    run(store, TransferProcessor())
    assert check_transfers(store) == 2
    accounts = eventkeep.Repository(store, BankAccount)
    assert (accounts.load("alice").balance, accounts.load("bob").balance) == (70, 130)
    [request] = store.read_stream(ok, 1, 1)
    [completed] = store.read_stream(ok, 2, 2)
    assert completed.type == "bank.TransferCompleted"
    assert completed.causation_id == str(request.event_id)
    assert completed.correlation_id == str(request.event_id)
    [rejected] = store.read_stream(too_much, 2, 2)
    assert "insufficient funds" in rejected.event.reason  # type: ignore[union-attr]


def test_a_reactor_is_never_rebuilt(store: EventStore) -> None:
    open_bank(store, ("alice", "bob"))
    request_transfer(store, "alice", "bob", Decimal("1.00"))
    run(store, TransferProcessor())

    class TransfersV2(TransferProcessor):
        version = 2

    run(store, TransfersV2())
    assert check_transfers(store) == 1
    assert projection_status(store)[0].version == 2


# -- inline projections -------------------------------------------------------------------------


def test_an_inline_projection_commits_with_the_append(sql_store: EventStore) -> None:
    open_bank(sql_store, ("alice",))
    balances = AccountBalances()
    apply_inline(
        sql_store,
        [balances],
        [StreamAppend("bankaccount-alice", [Deposited(amount=Decimal("5"), currency="EUR")])],
    )
    assert stored_balances(sql_store) == [("alice", "", 500, 1)]
    with pytest.raises(eventkeep.ConcurrencyError):
        apply_inline(
            sql_store,
            [balances],
            [StreamAppend("bankaccount-alice", [Deposited(amount=1, currency="EUR")], 0)],
        )
    assert stored_balances(sql_store) == [("alice", "", 500, 1)]


class Counting(SQLProjection):
    name = "test.counting"
    tables = ("counts",)
    schema = ("CREATE TABLE {counts} (type TEXT PRIMARY KEY, n INTEGER NOT NULL)",)

    @handles("Numbered", "Other")
    def count(self, event: RawEvent, ctx: HandlerContext) -> None:
        ctx.execute(
            "INSERT INTO {counts} VALUES (?, 1) ON CONFLICT (type) DO UPDATE "
            "SET n = {counts}.n + 1",
            (event.type,),
        )


def test_a_handler_for_type_names_counts_raw_events(sql_store: EventStore) -> None:
    numbered(sql_store, 3)
    sql_store.append("o-1", [RawEvent("Other", {}), RawEvent("Skipped", {})])
    run(sql_store, Counting())
    assert table(sql_store, "SELECT type, n FROM counts") == [("Numbered", 3), ("Other", 1)]


class _None:
    retries = 0
    retry_at = 0
    state = ""


_none = _None()
