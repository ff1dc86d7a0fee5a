"""``SyncOverAsync``: an async store presented as a synchronous ``EventStore``, so that the
contract suite (which is synchronous) runs its very cases against the asyncio API; and
``AsyncStoreContract``, the suite with its hooks pointed at the asyncio API (the async
repository, ``eventkeep.aio.moving``) and behind the adapter (tampering reaches ``.sync``).

Every call runs the async store's coroutine on a background event loop (one thread per adapter)
and waits for it. Each calling thread gets an asyncio context of its own, kept from call to
call: a transaction entered by a thread is the one its later calls join, exactly as a task's
calls join the transaction it opened::

    class TestAsyncSQLite(AsyncStoreContract):
        @pytest.fixture
        def make_store(self, tmp_path):
            def factory(**options):
                return SyncOverAsync.open(f"sqlite:///{tmp_path / 'x.db'}", **options)
            ...
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from typing import IO, Any, TypeVar

from eventkeep.aio import moving as aio_moving
from eventkeep.aio.domain import AsyncRepository
from eventkeep.aio.store import AsyncEventStore
from eventkeep.aio.transaction import AsyncTransaction
from eventkeep.aio.urls import open_store
from eventkeep.moving import CopyReport, FileImport
from eventkeep.store import EventStore
from eventkeep.store.recorded import RecordedEvent
from eventkeep.testing.contract import StoreContract
from eventkeep.testing.tamper import delete_event_behind_the_log, tamper_event

__all__ = ["AsyncStoreContract", "SyncOverAsync"]

T = TypeVar("T")


class _Loop:
    """An event loop running on a daemon thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="eventkeep-sync-over-async", daemon=True
        )
        self._thread.start()
        self._contexts = threading.local()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop, in the calling thread's context; wait for it."""
        context: contextvars.Context | None = getattr(self._contexts, "context", None)
        if context is None:
            context = self._contexts.context = contextvars.Context()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        async def guarded() -> T:
            # asyncio lets KeyboardInterrupt and SystemExit out of the loop (which would stop
            # its thread, and every later call would wait forever): carry them across instead,
            # and raise them in the calling thread, where the synchronous API raises them.
            try:
                return await coroutine
            except (KeyboardInterrupt, SystemExit) as exc:
                raise _Escaped(exc) from None

        def start() -> None:
            task = self.loop.create_task(guarded(), context=context)
            task.add_done_callback(lambda t: _copy(t, done))

        self.loop.call_soon_threadsafe(start)
        try:
            return done.result()
        except _Escaped as escaped:
            raise escaped.inner from None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class _Escaped(Exception):
    """A KeyboardInterrupt or SystemExit on its way from the loop to the calling thread."""

    def __init__(self, inner: BaseException) -> None:
        super().__init__(repr(inner))
        self.inner = inner


def _copy(task: asyncio.Task[T], done: concurrent.futures.Future[T]) -> None:
    if task.cancelled():
        done.cancel()
    elif (exc := task.exception()) is not None:
        done.set_exception(exc)
    else:
        done.set_result(task.result())


def _drain(loop: _Loop, events: AsyncIterator[RecordedEvent]) -> Iterator[RecordedEvent]:
    async def step() -> RecordedEvent:
        return await anext(events)

    while True:
        try:
            yield loop.run(step())
        except StopAsyncIteration:
            return


class SyncOverAsync:
    """An :class:`~eventkeep.aio.AsyncEventStore` with ``EventStore``'s synchronous methods.

    Attribute reads fall through to the async store (``url``, ``codec``, ``registry``,
    ``archive_dir``, ``key_store``) and ``sync`` is the ``EventStore`` underneath (for tests
    that reach behind the API; private primitives the async store lacks are read from it).
    Attribute assignment is not forwarded: set options when opening the store.
    """

    def __init__(self, store: AsyncEventStore, loop: _Loop | None = None) -> None:
        self.aio = store
        self.sync: EventStore = store.sync
        self._loop = loop or _Loop()
        self._closed = False

    @classmethod
    def open(cls, url: str, **options: Any) -> SyncOverAsync:
        """Open the store at ``url`` with ``eventkeep.aio.open_store``, adapted."""
        loop = _Loop()
        try:
            store = loop.run(open_store(url, **options))
        except BaseException:
            loop.stop()
            raise
        return cls(store, loop)

    def __getattr__(self, name: str) -> Any:
        """Any other attribute of the async store; a method is called on the loop (in this
        thread's context) and awaited, and an async iterator it returns is drained lazily:
        a method added to ``AsyncEventStore`` is testable here at once.

        A private name (``_stream_metas``, ``_export_page``) the async store lacks is the
        ``EventStore``'s underneath: the backend primitives that tests and helpers reach
        behind the API for. A public name the async store lacks raises ``AttributeError``:
        the async API must have every public method."""
        if name.startswith("_") and not name.startswith("__") and not hasattr(self.aio, name):
            return getattr(self.sync, name)
        attribute = getattr(self.aio, name)
        if not callable(attribute):
            return attribute
        loop = self._loop

        def call(*args: Any, **kw: Any) -> Any:
            async def run() -> Any:
                result = attribute(*args, **kw)
                return await result if inspect.isawaitable(result) else result

            result = loop.run(run())
            return _drain(loop, result) if isinstance(result, AsyncIterator) else result

        return call

    def _run(self, method: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kw: Any) -> T:
        return self._loop.run(method(*args, **kw))

    # -- writing -------------------------------------------------------------------------------

    def append(self, *args: Any, **kw: Any) -> Any:
        return self._run(self.aio.append, *args, **kw)

    def append_many(self, *args: Any, **kw: Any) -> Any:
        return self._run(self.aio.append_many, *args, **kw)

    def append_events(self, *args: Any, **kw: Any) -> Any:
        return self._run(self.aio.append_events, *args, **kw)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[_SyncTransaction]:
        block = self.aio.transaction()
        tx = self._loop.run(block.__aenter__())
        try:
            yield _SyncTransaction(tx, self._loop)
        except BaseException as exc:
            self._loop.run(block.__aexit__(type(exc), exc, exc.__traceback__))
            raise
        else:
            self._loop.run(block.__aexit__(None, None, None))

    def joined_transaction(self) -> Any:
        async def joined() -> AsyncTransaction | None:
            return self.aio.joined_transaction()

        return self._loop.run(joined())

    # -- reading -------------------------------------------------------------------------------

    def read_stream(self, *args: Any, **kw: Any) -> Iterator[RecordedEvent]:
        return _drain(self._loop, self._call_sync(self.aio.read_stream, *args, **kw))

    def read_all(self, *args: Any, **kw: Any) -> Iterator[RecordedEvent]:
        return _drain(self._loop, self._call_sync(self.aio.read_all, *args, **kw))

    def _call_sync(self, method: Callable[..., T], *args: Any, **kw: Any) -> T:
        """A plain method of the async store, called on the loop in this thread's context (so
        that a read joins this thread's transaction)."""

        async def call() -> T:
            return method(*args, **kw)

        return self._loop.run(call())

    def read(self, *args: Any, **kw: Any) -> Any:
        return self._run(self.aio.read, *args, **kw)

    def stream_version(self, *args: Any, **kw: Any) -> Any:
        return self._run(self.aio.stream_version, *args, **kw)

    def list_streams(self, *args: Any, **kw: Any) -> Any:
        return self._run(self.aio.list_streams, *args, **kw)

    def head_position(self) -> Any:
        return self._run(self.aio.head_position)

    def stats(self) -> Any:
        return self._run(self.aio.stats)

    def verify(self, **kw: Any) -> Any:
        return self._run(self.aio.verify, **kw)

    def anchor(self, *args: Any, **kw: Any) -> Any:
        return self._run(self.aio.anchor, *args, **kw)

    def save_snapshot(self, *args: Any, **kw: Any) -> Any:
        return self._run(self.aio.save_snapshot, *args, **kw)

    def load_snapshot(self, *args: Any, **kw: Any) -> Any:
        return self._run(self.aio.load_snapshot, *args, **kw)

    def delete_snapshots(self, *args: Any, **kw: Any) -> Any:
        return self._run(self.aio.delete_snapshots, *args, **kw)

    def projection_state(self) -> Any:
        return self._run(self.aio.projection_state)

    def wait_for_projection(self, *args: Any, **kw: Any) -> Any:
        return self._run(self.aio.wait_for_projection, *args, **kw)

    def wait_for_events(self, *args: Any, **kw: Any) -> Any:
        return self._run(self.aio.wait_for_events, *args, **kw)

    def _type_names(self, types: Iterable[Any]) -> tuple[str, ...]:
        return self.sync._type_names(types)

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self.aio.close)
        finally:
            self._loop.stop()

    def __enter__(self) -> SyncOverAsync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyncOverAsync({self.aio!r})"


class _SyncTransaction:
    """An :class:`~eventkeep.aio.AsyncTransaction` with ``Transaction``'s methods."""

    def __init__(self, tx: AsyncTransaction, loop: _Loop) -> None:
        self.aio = tx
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.aio, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kw: Any) -> Any:
            result = attribute(*args, **kw)
            if isinstance(result, AsyncIterator):
                return _drain(self._loop, result)
            if isinstance(result, Coroutine):
                return self._loop.run(result)
            return result

        return call

    @property
    def supports_sql(self) -> bool:
        return self.aio.supports_sql


class _SyncRepository:
    """An :class:`~eventkeep.aio.AsyncRepository` with ``Repository``'s methods: coroutines
    are run on the adapter's loop (in the calling thread's context) and awaited."""

    def __init__(self, repository: AsyncRepository[Any], loop: _Loop) -> None:
        self.aio = repository
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.aio, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kw: Any) -> Any:
            async def run() -> Any:
                result = attribute(*args, **kw)
                return await result if inspect.isawaitable(result) else result

            return self._loop.run(run())

        return call


def _adapted(store: EventStore) -> SyncOverAsync:
    if not isinstance(store, SyncOverAsync):
        raise TypeError(f"AsyncStoreContract's stores are SyncOverAsync adapters, got {store!r}")
    return store


class AsyncStoreContract(StoreContract):
    """The contract suite against the asyncio API: ``make_store`` returns
    :class:`SyncOverAsync` adapters, and the suite's other entry points are the asyncio API's
    own (``AsyncRepository``, ``eventkeep.aio.moving``). ``tamper`` and
    ``delete_behind_the_log`` reach the ``EventStore`` underneath (memory and SQLite here;
    another backend overrides them with ``.sync``)."""

    def tamper(self, store: EventStore, stream_id: str, version: int) -> None:
        tamper_event(_adapted(store).sync, stream_id, version)

    def delete_behind_the_log(self, store: EventStore, stream_id: str, version: int) -> None:
        delete_event_behind_the_log(_adapted(store).sync, stream_id, version)

    def repository(self, store: EventStore, aggregate: Any, **options: Any) -> Any:
        adapter = _adapted(store)
        return _SyncRepository(AsyncRepository(adapter.aio, aggregate, **options), adapter._loop)

    def copy_store(self, source: EventStore, target: EventStore, **options: Any) -> CopyReport:
        into = _adapted(target)
        coroutine = aio_moving.copy_store(_adapted(source).aio, into.aio, **options)
        return into._loop.run(coroutine)

    def export_file(self, store: EventStore, out: IO[bytes], **options: Any) -> int:
        adapter = _adapted(store)
        return adapter._loop.run(aio_moving.export_file(adapter.aio, out, **options))

    def import_file(self, store: EventStore, lines: Iterable[bytes], **options: Any) -> FileImport:
        adapter = _adapted(store)
        return adapter._loop.run(aio_moving.import_file(adapter.aio, lines, **options))
