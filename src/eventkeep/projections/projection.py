"""Projections, SQL read models and reactors: what a runner feeds events to.

::

    class AccountBalances(SQLProjection):
        name = "bank.balances"
        version = 1
        tables = ("account_balances",)
        schema = ("CREATE TABLE {account_balances} (account TEXT PRIMARY KEY, cents INTEGER)",)

        @handles(Deposited)
        def deposited(self, event: Deposited, ctx: HandlerContext) -> None:
            ctx.execute(
                "INSERT INTO {account_balances} VALUES (?, ?) ON CONFLICT (account) "
                "DO UPDATE SET cents = cents + excluded.cents",
                (ctx.recorded.stream_id, int(event.amount * 100)),
            )

A *transactional* projection (the default) runs its handlers inside the store transaction that
also moves its checkpoint: whatever they do through ``ctx`` (SQL on the store's database,
appends) happens exactly once. A projection with ``transactional = False`` updates something
outside the store (a search index, a cache): its checkpoint is saved after each batch, so after
a crash the batch is delivered again (at-least-once); ``ctx.position`` and ``ctx.event_id`` let
it skip what it has already applied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from eventkeep.domain.context import command_context, current_context
from eventkeep.errors import ConfigurationError, ValidationError
from eventkeep.projections.names import check_table_name, quoted_table
from eventkeep.store import ANY, AppendItem, AppendResult, EventStore, Expected, StreamAppend
from eventkeep.store.base import Transaction
from eventkeep.store.dcb import Query
from eventkeep.store.events import Event
from eventkeep.store.recorded import RecordedEvent

__all__ = ["HandlerContext", "Projection", "Reactor", "SQLProjection", "handles"]

F = TypeVar("F", bound=Callable[..., Any])


def handles(*types: type[Event] | str) -> Callable[[F], F]:
    """Mark a projection method as the handler of these event types (classes or type names).

    The method is called as ``handler(self, event, ctx)``: ``event`` is the typed event
    (upcast if old; a ``RawEvent`` for an unregistered type name), ``ctx`` a
    :class:`HandlerContext`.
    """
    names: list[str] = []
    for item in types:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, type) and issubclass(item, Event):
            names.extend((item.__event_type__, *item.__aliases__))
        else:
            raise ValidationError(f"handles() takes Event classes or type names, got {item!r}")
    if not names:
        raise ValidationError("handles() needs at least one event type")

    def mark(fn: F) -> F:
        fn._ek_handles = (*getattr(fn, "_ek_handles", ()), *names)  # type: ignore[attr-defined]
        return fn

    return mark


class HandlerContext:
    """What a handler gets besides the event: where it is, and the transaction to act in."""

    __slots__ = ("_sql", "generation", "projection", "recorded", "replay_until", "store", "tx")

    def __init__(
        self,
        store: EventStore,
        projection: Projection,
        tx: Transaction | None,
        generation: int,
        *,
        replay_until: int = 0,
    ) -> None:
        self.store = store
        self.projection = projection
        self.tx = tx
        self.generation = generation
        self.replay_until = replay_until
        self.recorded: RecordedEvent | None = None
        self._sql: dict[str, str] = {}

    @property
    def replaying(self) -> bool:
        """True while a rebuild or a run after a reset replays events already handled once:
        for the event being handled, whether it is at or before the head as it was when the
        replay started; in ``setup``/``activate``/``drop`` (no event), whether a replay is
        starting. Reactors skip their handlers then, unless ``replay_effects`` is set."""
        if self.recorded is None:
            return self.replay_until > 0
        return self.recorded.position <= self.replay_until

    @property
    def position(self) -> int:
        """The global position of the event being handled (a natural deduplication key)."""
        return self._current().position

    @property
    def event_id(self) -> Any:
        return self._current().event_id

    def _current(self) -> RecordedEvent:
        if self.recorded is None:
            raise ValidationError("no event is being handled")
        return self.recorded

    def _transaction(self, what: str) -> Transaction:
        if self.tx is None:
            raise ConfigurationError(
                f"{self.projection.name}: {what} needs a transactional projection "
                "(this one has transactional = False)"
            )
        return self.tx

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run SQL in the projection's transaction; ``{table}`` names this generation's table."""
        tx = self._transaction("execute()")
        text = self._sql.get(statement)
        if text is None:
            text = self._sql[statement] = self.projection.format_sql(statement, self.generation)
        return tx.execute(text, params)

    def append(
        self,
        stream_id: str,
        events: Sequence[AppendItem],
        expected_version: Expected | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        """Append in the projection's transaction, with correlation and causation ids."""
        expected = ANY if expected_version is None else expected_version
        return self.append_many([StreamAppend(stream_id, events, expected, metadata)])[0]

    def append_many(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        tx = self._transaction("append()")
        context = current_context()
        if context is None:
            return tx.append_many(appends)
        stamped = context.metadata()
        return tx.append_many(
            [item._replace(metadata={**stamped, **(item.metadata or {})}) for item in appends]
        )


class Projection:
    """A named, versioned consumer of the global log; subclass it and add ``@handles``."""

    name: ClassVar[str] = ""
    """The projection's stable name: its checkpoint, status and lease are stored under it."""
    version: ClassVar[int] = 1
    """Bump it when the handlers change meaning: the runner then rebuilds the read model."""
    stream_prefix: ClassVar[str | None] = None
    """Only events of streams starting with this (e.g. ``"bankaccount-"``)."""
    query: ClassVar[Query | None] = None
    """Only events matching this DCB query (``eventkeep.Query``: types and tags, read through
    the tag index), instead of every event of a handled type; not with ``stream_prefix``.
    Handlers are still chosen by type."""
    transactional: ClassVar[bool] = True
    """Handlers run inside the checkpoint's transaction (exactly-once); False: at-least-once."""
    rebuildable: ClassVar[bool] = True
    batch_size: ClassVar[int] = 500
    """Most events per batch (one transaction for a transactional projection)."""
    park_failures: ClassVar[bool] = False
    """Opt-in dead letter: an event whose handler fails is parked (kept with its error in the
    projection's record) and the projection goes on, instead of stopping there. See
    ``eventkeep projections parked | replay-parked | discard-parked``."""
    park_stream_order: ClassVar[bool] = False
    """With ``park_failures`` (transactional projections): later events of a stream that has a
    parked event are parked behind it, so each stream is still handled in order."""
    max_batch_seconds: ClassVar[float] = 1.0
    """A transactional batch commits early once it has held its transaction this long, so a
    runner holds locks (SQLite's write lock, PostgreSQL's row locks) for a bounded time."""
    tables: ClassVar[Sequence[str]] = ()

    _ek_handlers: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for type_name in getattr(value, "_ek_handles", ()):
                    handlers[type_name] = attr
        cls._ek_handlers = handlers
        if cls.query is not None and (
            not isinstance(cls.query, Query) or cls.stream_prefix is not None
        ):
            raise ConfigurationError(
                f"{cls.__qualname__}.query must be an eventkeep.Query, and not beside stream_prefix"
            )
        if not isinstance(cls.version, int) or isinstance(cls.version, bool) or cls.version < 1:
            raise ConfigurationError(f"{cls.__qualname__}.version must be an int >= 1")
        for table in cls.tables:
            check_table_name(table, what=f"{cls.__qualname__}.tables", error=ConfigurationError)

    @classmethod
    def handled_types(cls) -> tuple[str, ...]:
        return tuple(cls._ek_handlers)

    def handle(self, recorded: RecordedEvent, ctx: HandlerContext) -> None:
        """Call the handler of ``recorded``'s type, if there is one (and, with a ``query``,
        if the event matches it)."""
        attr = self._ek_handlers.get(recorded.type)
        query = self.query
        if (
            attr is not None
            and query is not None
            and not query.matches(recorded.type, recorded.tags)
        ):
            return
        if attr is not None:
            getattr(self, attr)(recorded.event, ctx)

    # -- the read model's life cycle ----------------------------------------------------------

    def setup(self, ctx: HandlerContext) -> None:
        """Create generation ``ctx.generation`` of the read model (in the transaction)."""

    def activate(self, ctx: HandlerContext) -> None:
        """Make generation ``ctx.generation`` the one readers see (in the transaction)."""

    def drop(self, ctx: HandlerContext) -> None:
        """Remove generation ``ctx.generation`` of the read model (in the transaction)."""

    def reset(self) -> None:
        """Clear an external (non-transactional) read model before it is replayed from the start."""

    def forgotten(self, subject: str, ctx: HandlerContext) -> None:
        """Erase what the read model derived from personal data of ``subject``, which was
        forgotten (``store.forget``). Optional: override it in a read model that copies
        personal fields. The runner calls it once per forget (in the checkpoint's transaction
        for a transactional projection: exactly once; at least once otherwise), for the live
        generation and, during a blue/green rebuild, for the one being built. See
        docs/erasure.md."""

    @classmethod
    def erases(cls) -> bool:
        """True if the projection has a ``forgotten`` hook."""
        return cls.forgotten is not Projection.forgotten

    def format_sql(self, statement: str, generation: int) -> str:
        return statement

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} v{self.version}>"


class SQLProjection(Projection):
    """A read model of SQL tables in the store's own database, updated exactly-once.

    ``tables`` names the tables; ``schema`` creates them, writing ``{name}`` for each table.
    Each generation of the read model gets its own physical tables (``name__g<N>``) and readers
    query a view called ``name``: a rebuild fills fresh tables while the view keeps serving the
    old ones, then swaps the view in one transaction. Handlers write ``{name}`` too.
    """

    schema: ClassVar[Sequence[str]] = ()

    def table_names(self, generation: int) -> dict[str, str]:
        return {table: f"{table}__g{generation}" for table in self.tables}

    def format_sql(self, statement: str, generation: int) -> str:
        return statement.format_map(self.table_names(generation))

    def setup(self, ctx: HandlerContext) -> None:
        for table in self.tables:
            name = quoted_table(table, ctx.generation)
            ctx._transaction("setup").execute(f"DROP TABLE IF EXISTS {name}")
        for statement in self.schema:
            ctx.execute(statement)

    def activate(self, ctx: HandlerContext) -> None:
        tx = ctx._transaction("activate")
        for view in self.tables:
            tx.execute(f"DROP VIEW IF EXISTS {quoted_table(view)}")
            table = quoted_table(view, ctx.generation)
            tx.execute(f"CREATE VIEW {quoted_table(view)} AS SELECT * FROM {table}")

    def drop(self, ctx: HandlerContext) -> None:
        tx = ctx._transaction("drop")
        for table in self.tables:
            tx.execute(f"DROP TABLE IF EXISTS {quoted_table(table, ctx.generation)}")


class Reactor(Projection):
    """A process manager: handlers append new events in response to events.

    The appends and the reactor's checkpoint commit in one transaction, so a crash never
    doubles (or loses) a reaction. Every event appended carries the trigger's correlation id
    and names the trigger as its cause. Reactors are never rebuilt: replaying them would act
    again. After a reset, the events up to the head at the reset are a replay: the handlers
    are skipped for them, unless ``replay_effects = True``.
    """

    rebuildable = False
    replay_effects: ClassVar[bool] = False
    """Whether the handlers run again, with ``ctx.replaying`` True, for events a reset makes it
    replay. By default they do not: a replay must not send the emails (or append the
    reactions) a second time; the checkpoint just moves over those events."""

    def handle(self, recorded: RecordedEvent, ctx: HandlerContext) -> None:
        if ctx.replaying and not self.replay_effects:
            return
        attr = self._ek_handlers.get(recorded.type)
        if attr is not None:
            with command_context(caused_by=recorded):
                getattr(self, attr)(recorded.event, ctx)
