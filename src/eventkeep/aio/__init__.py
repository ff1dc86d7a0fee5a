"""The asyncio API: the same store, transactions, repository, subscriptions and projections,
awaited.

::

    import eventkeep.aio

    store = await eventkeep.aio.open_store("sqlite:///bank.db")
    await store.append("account-1", [Deposited(amount=Decimal("10.00"))], expected_version=0)
    async for recorded in store.read_stream("account-1"):
        print(recorded.version, recorded.event)
    await store.close()

Every class here runs the synchronous API's own code (see ``docs/aio.md``): on threads of its
own, or, for PostgreSQL's appends, reads and waiting, the same steps on psycopg's
``AsyncConnection`` (``eventkeep.backends.postgres.plans``). One implementation of the store's
logic, the same errors and guarantees, and an event loop that never waits for a database.
"""

from eventkeep.aio.domain import AsyncRepository
from eventkeep.aio.events import Events
from eventkeep.aio.projections import AsyncRunner, AsyncSubscription
from eventkeep.aio.store import DEFAULT_THREADS, AsyncEventStore
from eventkeep.aio.transaction import AsyncTransaction
from eventkeep.aio.urls import open_store

__all__ = [
    "DEFAULT_THREADS",
    "AsyncEventStore",
    "AsyncRepository",
    "AsyncRunner",
    "AsyncSubscription",
    "AsyncTransaction",
    "Events",
    "open_store",
]
