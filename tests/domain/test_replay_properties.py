"""Property: whatever the commands, loading gives the state that replaying every event gives.

With and without snapshots, at every version, for the class-based aggregate and the decider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventkeep import Event, EventStore, RawEvent, Repository
from eventkeep.examples.bank import (
    AccountOpened,
    BankAccount,
    BankError,
    Deposited,
    Withdrawn,
    account_decider,
)

State = tuple[str, Decimal, bool, int]

amounts = st.integers(min_value=1, max_value=20_000).map(lambda cents: Decimal(cents) / 100)
commands = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), amounts),
        st.tuples(st.just("withdraw"), amounts),
        st.tuples(st.just("save"), st.none()),
        st.tuples(st.just("reload"), st.none()),
    ),
    max_size=40,
)


def replayed(events: Iterable[Event | RawEvent]) -> State:
    """The reference: a plain fold over the stored events, independent of the library."""
    owner, balance, is_open, version = "", Decimal(0), False, 0
    for event in events:
        version += 1
        if isinstance(event, AccountOpened):
            owner, is_open = event.owner, True
        elif isinstance(event, Deposited):
            balance += event.amount
        elif isinstance(event, Withdrawn):
            balance -= event.amount
    return owner, balance, is_open, version


def state_of(account: BankAccount) -> State:
    return account.owner, account.balance, account.is_open, account.version


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(script=commands, every=st.sampled_from([None, 1, 3, 7]))
def test_load_equals_a_replay_from_scratch_at_every_version(
    make_store: Callable[..., EventStore],
    script: list[tuple[str, Decimal | None]],
    every: int | None,
) -> None:
    store = make_store()
    try:
        snapshotting = Repository(
            store, BankAccount, snapshot_every=every, snapshots=every is not None
        )
        plain = Repository(store, BankAccount, snapshots=False)
        deciders = Repository(store, account_decider)
        account = snapshotting.create("p")
        account.open(owner="P")
        for command, amount in script:
            try:
                if command == "deposit" and amount is not None:
                    account.deposit(amount)
                elif command == "withdraw" and amount is not None:
                    account.withdraw(amount)
                elif command == "save":
                    snapshotting.save(account)
                else:
                    snapshotting.save(account)
                    account = snapshotting.load("p")
            except BankError:
                pass
        snapshotting.save(account)

        events = [recorded.event for recorded in store.read_stream("bankaccount-p")]
        assert state_of(account) == replayed(events)
        assert state_of(snapshotting.load("p")) == replayed(events)
        for version in range(1, len(events) + 1):
            expected = replayed(events[:version])
            assert state_of(snapshotting.load("p", at_version=version)) == expected
            assert state_of(plain.load("p", at_version=version)) == expected
            decided = deciders.load("p", at_version=version)
            assert (decided.state.owner, decided.state.balance, decided.state.is_open) == (
                expected[:3]
            )
        assert expected[1] >= 0  # the invariant held all along
    finally:
        store.close()
