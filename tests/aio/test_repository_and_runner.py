"""The async repository (aggregates, deciders, snapshots, temporal loads, in a transaction)
and the async projection runner."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from aio_support import url

import eventkeep.aio
import pg_fixtures
from eventkeep import NotFoundError
from eventkeep.aio import AsyncRepository, AsyncRunner
from eventkeep.examples.bank import BankAccount, Deposit, OpenAccount, account_decider
from eventkeep.examples.bank.readmodels import AccountBalances

__all__ = ["url"]  # the fixture

SQL = ["sqlite", *(["postgres"] if pg_fixtures.wanted() else [])]
"""The backends with SQL read models."""


def test_the_async_repository_loads_saves_snapshots_and_goes_back_in_time(url: str) -> None:
    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            accounts = AsyncRepository(store, BankAccount, snapshot_every=2)
            account = accounts.create("alice")
            account.open(owner="Alice")
            for _ in range(4):
                account.deposit(Decimal("1"))
            await accounts.save(account)
            loaded = await accounts.load("alice")
            assert (loaded.version, loaded.balance) == (5, Decimal("4"))
            assert await store.load_snapshot("bankaccount-alice") is not None
            assert (await accounts.load("alice", at_version=2)).balance == Decimal("1")
            assert [e.version for e in await accounts.history("alice")] == [1, 2, 3, 4, 5]
            assert await accounts.ids() == ["alice"]
            with pytest.raises(NotFoundError):
                await accounts.load("nobody")
            decided = AsyncRepository(store, account_decider, category="decided")
            await decided.handle("bob", OpenAccount(owner="Bob"))
            await decided.handle("bob", Deposit(amount=Decimal("3")))
            assert (await decided.load("bob")).state.balance == Decimal("3")

    asyncio.run(main())


def test_a_repository_on_a_transaction_commits_or_rolls_back_with_it(url: str) -> None:
    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:

            class Undo(Exception):
                pass

            async def open_then_undo() -> None:
                async with store.transaction() as tx:
                    accounts = AsyncRepository(tx, BankAccount)
                    account = accounts.create("carol")
                    account.open(owner="Carol")
                    await accounts.save(account)
                    assert (await accounts.load("carol")).owner == "Carol"
                    raise Undo

            with pytest.raises(Undo):
                await open_then_undo()
            assert not await AsyncRepository(store, BankAccount).exists("carol")

    asyncio.run(main())


@pytest.mark.parametrize("backend", SQL)
def test_the_async_runner_keeps_a_read_model_and_stops_when_cancelled(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'runner.db'}"
        if backend == "sqlite"
        else pg_fixtures.fresh_store_url(request)
    )

    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            accounts = AsyncRepository(store, BankAccount)
            for name in ("a", "b"):
                account = accounts.create(name)
                account.open(owner=name.upper())
                account.deposit(Decimal("2.50"))
                await accounts.save(account)
            runner = AsyncRunner(store, [AccountBalances()])
            assert await runner.run(until_caught_up=True, timeout=60)
            async with store.transaction() as tx:
                rows = await tx.execute(
                    "SELECT account, balance_cents FROM account_balances ORDER BY account"
                )
            assert [tuple(r) for r in rows] == [("a", 250), ("b", 250)]
            # Running live: cancelling the task stops the runner and releases its lease.
            live = AsyncRunner(store, [AccountBalances()])
            task = asyncio.create_task(live.run())
            await accounts.execute("a", lambda a: a.deposit(Decimal("1")))
            position = await store.head_position()
            assert await store.wait_for_projection(AccountBalances.name, position, 60)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert live.sync.stopping

    asyncio.run(main())
