"""The life of data through the asyncio API: forgetting reaches projections the async runner
drives, lifecycle calls and imports refuse a transaction, a deleted stream's read raises when
awaited, and one async store's export imports into another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import pytest
from aio_support import deposits, url

import eventkeep.aio
from eventkeep.aio import AsyncRunner
from eventkeep.errors import StreamDeletedError, ValidationError
from eventkeep.projections.checkpoints import projection_status
from eventkeep.projections.projection import HandlerContext, Projection, handles
from eventkeep.store.hashing import ChainRow
from eventkeep.store.personal import REDACTED
from eventkeep.testing.events import CustomerRegistered

__all__ = ["url"]  # the fixture

ADA = "ada@example.com"


class Emails(Projection):
    """A read model (a dict) that copies a personal field and erases it when told."""

    name = "aio.emails"
    transactional = False
    rows: ClassVar[dict[str, str]] = {}
    told: ClassVar[list[str]] = []

    @handles(CustomerRegistered)
    def registered(self, event: CustomerRegistered, ctx: HandlerContext) -> None:
        self.rows[event.customer_id] = event.email

    def reset(self) -> None:
        self.rows.clear()

    def forgotten(self, subject: str, ctx: HandlerContext) -> None:
        self.told.append(subject)
        self.rows.pop(subject, None)


def test_the_async_runner_tells_a_projection_what_was_forgotten_once(url: str) -> None:
    Emails.rows.clear()
    Emails.told.clear()

    async def main() -> None:
        async with await eventkeep.aio.open_store(url) as store:
            for customer in ("c1", "c2"):
                event = CustomerRegistered(customer_id=customer, email=ADA)
                await store.append(f"customer-{customer}", [event])
            assert await AsyncRunner(store, [Emails()]).run(until_caught_up=True, timeout=60)
            assert Emails.rows == {"c1": ADA, "c2": ADA}
            report = await store.forget("c1", by="dpo", reason="asked")
            assert report.had_key
            assert [e.subject for e in await store.forgotten_subjects()] == ["c1"]
            [status] = await asyncio.to_thread(projection_status, store.sync, Emails.name)
            assert status.forgotten == ("c1",)
            for _ in range(2):
                assert await AsyncRunner(store, [Emails()]).run(until_caught_up=True, timeout=60)
            assert Emails.told == ["c1"]
            assert Emails.rows == {"c2": ADA}
            first = await anext(store.read_stream("customer-c1"))
            assert first.event.email == REDACTED  # type: ignore[union-attr]

    asyncio.run(main())


def test_lifecycle_calls_and_imports_refuse_a_transaction_and_a_deleted_read_raises_when_awaited(
    url: str, tmp_path: Path
) -> None:
    async def main() -> None:
        archives = tmp_path / "archives"
        async with await eventkeep.aio.open_store(url, archive_dir=str(archives)) as store:
            assert store.archive_dir == archives
            await store.append("order-1", deposits(4))
            async with store.transaction():
                with pytest.raises(ValidationError, match="transaction of their own"):
                    await store.delete_stream("order-1", by="test")
                with pytest.raises(ValidationError, match="outside"):
                    await store.import_(store.export())
            await store.archive("order-1", before_version=3, by="test")
            assert await store.first_version("order-1") == 3
            archived = await store.read_stream("order-1", archived=True).list()
            assert [e.version for e in archived] == [1, 2, 3, 4]
            operation = await store.delete_stream("order-1", by="test", reason="done")
            reading = store.read_stream("order-1")  # nothing is read yet: no error
            with pytest.raises(StreamDeletedError) as raised:
                await anext(reading)
            assert raised.value.operation_id == operation.operation_id
            deleted = await store.deletion("order-1")
            assert deleted is not None
            assert deleted.operation_id == operation.operation_id
            kinds = [op.kind for op in await store.operations()]
            assert kinds == ["archive", "delete"]
            with pytest.raises(ValidationError):
                store.read_stream("order-1", archived="yes")  # type: ignore[arg-type]

    asyncio.run(main())


def test_an_async_export_imports_into_another_async_store_in_parts(
    url: str, tmp_path: Path
) -> None:
    async def main() -> None:
        async with (
            await eventkeep.aio.open_store(url) as source,
            await eventkeep.aio.open_store(f"sqlite:///{tmp_path / 'target.db'}") as target,
        ):
            for n in range(5):
                await source.append(f"s-{n % 2}", deposits(n + 1))
            report = await target.import_(source.export(), batch_size=4)
            assert (report.written, report.skipped) == (15, 0)
            assert [r async for r in target.export()] == [r async for r in source.export()]
            again = await target.import_(source.export(), batch_size=4)
            assert (again.written, again.skipped) == (0, 15)

            async def backwards() -> AsyncIterator[ChainRow]:
                rows = await source.export().list()
                for row in reversed(rows):
                    yield row

            with pytest.raises(ValidationError, match="log order"):
                await target.import_(backwards(), batch_size=1)
            with pytest.raises(ValidationError, match="batch_size"):
                await target.import_(source.export(), batch_size=0)
            assert (await target.verify(deep=False)).ok

    asyncio.run(main())
