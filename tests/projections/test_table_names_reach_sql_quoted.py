"""Table names reach SQL only checked and quoted: a projection record whose table list was
tampered with is refused, never executed (SQLite and PostgreSQL)."""

from __future__ import annotations

import msgspec
import pytest

import eventkeep
from eventkeep import EventStore, RawEvent
from eventkeep.projections import HandlerContext, SQLProjection, handles, reset_projection
from eventkeep.projections.checkpoints import ProjectionRecord, load_record, save_record
from eventkeep.projections.runner import Runner

INJECTION = "x; CREATE TABLE pwned (i int); --"


class Ordered(SQLProjection):
    name = "test.ordered"
    tables = ("order", "Mixed_Case")  # a reserved word, and capitals
    schema = (
        'CREATE TABLE "{order}" (n INTEGER)',
        "CREATE TABLE {Mixed_Case} (n INTEGER)",
    )

    @handles("Numbered")
    def count(self, event: RawEvent, ctx: HandlerContext) -> None:
        ctx.execute('INSERT INTO "{order}" VALUES (1)')
        ctx.execute("INSERT INTO {Mixed_Case} VALUES (1)")


def _tables(store: EventStore) -> set[str]:
    """Every table and view name in the store's database (or schema), lower-cased."""
    if type(store).__name__ == "PostgresStore":
        query = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    else:
        query = "SELECT name FROM sqlite_master"
    with store.transaction() as tx:
        return {str(r[0]).lower() for r in tx.execute(query)}


def _run(store: EventStore) -> None:
    runner = Runner(store, [Ordered()], lease_ttl=5.0)
    assert runner.run(until_caught_up=True, timeout=30), "the runner did not catch up"


def test_a_tampered_table_list_in_a_record_is_refused_not_executed(
    sql_store: EventStore,
) -> None:
    sql_store.append("n-1", [RawEvent("Numbered", {})])
    _run(sql_store)
    with sql_store.transaction() as tx:
        record = load_record(tx, Ordered.name)
        assert record is not None
        tampered = msgspec.structs.replace(record, tables=[INJECTION])
        save_record(tx, tampered)
    with pytest.raises(eventkeep.IntegrityError, match="not a table name"):
        reset_projection(sql_store, Ordered.name, force=True)
    assert "pwned" not in _tables(sql_store)
    with sql_store.transaction() as tx:  # nothing of the reset happened
        assert isinstance(load_record(tx, Ordered.name), ProjectionRecord)


def test_reserved_words_and_capitals_as_table_names_reset_cleanly(sql_store: EventStore) -> None:
    sql_store.append("n-1", [RawEvent("Numbered", {})])
    _run(sql_store)
    assert {"order", "mixed_case"} <= _tables(sql_store)
    reset_projection(sql_store, Ordered.name, force=True)
    assert not {"order", "mixed_case", "order__g1", "mixed_case__g1"} & _tables(sql_store)


def test_a_table_name_that_is_not_an_identifier_is_refused_at_class_definition() -> None:
    with pytest.raises(eventkeep.ConfigurationError):

        class Bad(SQLProjection):
            name = "test.bad"
            tables = (INJECTION,)
