"""Many tasks at once: every append is stored once, each caller gets its own result or error
(appends sent together are written together, see eventkeep.aio.batching)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from aio_support import deposits, url

import eventkeep.aio
from eventkeep import NO_STREAM, ConcurrencyError, StreamAppend, ValidationError
from eventkeep.testing.events import Deposited

__all__ = ["url"]  # the fixture


def test_a_hundred_tasks_appending_to_their_own_streams_all_get_their_positions(
    url: str,
) -> None:
    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            results = await asyncio.gather(
                *(store.append(f"own-{n}", deposits(2), NO_STREAM) for n in range(100))
            )
            positions = [p for r in results for p in r.positions]
            assert sorted(positions) == list(range(1, 201))
            assert all(r.versions == (1, 2) for r in results)
            for n, result in enumerate(results):
                stored = await store.read_stream(f"own-{n}").list()
                assert [e.position for e in stored] == list(result.positions)
            assert (await store.verify()).ok

    asyncio.run(main())


def test_tasks_appending_to_one_stream_keep_their_order_and_every_event(url: str) -> None:
    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            results = await asyncio.gather(
                *(store.append("hot", [Deposited(amount=Decimal(n))]) for n in range(1, 101))
            )
            assert sorted(r.version for r in results) == list(range(1, 101))
            stored = await store.read_stream("hot").list()
            # Each caller's event is at the version its result names.
            amounts = {r.version: Decimal(n) for n, r in enumerate(results, 1)}
            assert [e.event.amount for e in stored] == [amounts[e.version] for e in stored]
            assert len(stored) == 100

    asyncio.run(main())


def test_in_a_group_a_conflict_or_bad_input_fails_only_its_own_append(url: str) -> None:
    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            await store.append("taken", deposits(1), NO_STREAM)
            calls = [store.append(f"fine-{n}", deposits(1), NO_STREAM) for n in range(10)]
            calls.insert(3, store.append("taken", deposits(1), NO_STREAM))
            calls.insert(7, store.append("", deposits(1)))
            twice = [StreamAppend("a", deposits(1)), StreamAppend("a", deposits(1))]
            calls.insert(9, store.append_many(twice))
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            assert isinstance(outcomes[3], ConcurrencyError)
            assert isinstance(outcomes[7], ValidationError)
            assert isinstance(outcomes[9], ValidationError)
            fine = [o for n, o in enumerate(outcomes) if n not in (3, 7, 9)]
            assert all(not isinstance(o, BaseException) for o in fine), fine
            assert await store.stream_version("taken") == 1
            assert await store.stream_version("a") == 0
            assert await store.head_position() == 11
            # A conflict alone: that append fails, the rest of its group is written.
            calls = [store.append(f"more-{n}", deposits(1), NO_STREAM) for n in range(10)]
            calls.insert(5, store.append("taken", deposits(1), expected_version=0))
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            assert isinstance(outcomes.pop(5), ConcurrencyError)
            assert all(not isinstance(o, BaseException) for o in outcomes), outcomes
            assert await store.head_position() == 21

    asyncio.run(main())


def test_a_hundred_tasks_executing_commands_on_one_aggregate_lose_none(url: str) -> None:
    from eventkeep.examples.bank import BankAccount

    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            accounts = eventkeep.aio.AsyncRepository(store, BankAccount)
            account = accounts.create("shared")
            account.open(owner="Shared")
            await accounts.save(account)
            await asyncio.gather(
                *(
                    accounts.execute("shared", lambda a: a.deposit(Decimal("1")), retries=200)
                    for _ in range(100)
                )
            )
            assert (await accounts.load("shared")).balance == Decimal("100")

    asyncio.run(main())
