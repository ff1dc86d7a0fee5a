"""The steps of ``plans.py`` run on a ``psycopg.AsyncConnection``: the asyncio twin of
``writer.run``, operation for operation (a pipeline is psycopg's async pipeline, a transaction
its async transaction block).
"""

from __future__ import annotations

from typing import Any

import psycopg

from eventkeep.backends.postgres import sql
from eventkeep.backends.postgres.plans import (
    InTransaction,
    Op,
    Pipeline,
    Rollback,
    Run,
    Steps,
)

__all__ = ["run"]


async def run(conn: psycopg.AsyncConnection[Any], steps: Steps) -> Any:
    """Run a plan on ``conn``: each operation it yields is awaited here, its result sent back
    in, and what it raised thrown back in; the plan's return value is returned."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = steps.send(result) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        finally:
            error = None
        try:
            result = await _do(conn, op)
        except BaseException as exc:
            result, error = None, exc


async def _do(conn: psycopg.AsyncConnection[Any], op: Op) -> Any:
    if isinstance(op, Run):
        return await _fetch(await _execute(conn, op), op)
    if isinstance(op, Pipeline):
        async with conn.pipeline():
            cursors = [await _execute(conn, step) for step in op.steps]
        return [await _fetch(cur, step) for cur, step in zip(cursors, op.steps, strict=True)]
    if isinstance(op, InTransaction):
        async with conn.transaction():
            return await run(conn, op.steps)
    if isinstance(op, Rollback):
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await conn.execute(sql.ROLLBACK)
        return None
    raise AssertionError(f"not an operation: {op!r}")  # pragma: no cover


async def _execute(conn: psycopg.AsyncConnection[Any], step: Run) -> psycopg.AsyncCursor[Any]:
    cur = conn.cursor(binary=step.binary)
    await cur.execute(step.statement, step.params)
    return cur


async def _fetch(cur: psycopg.AsyncCursor[Any], step: Run) -> Any:
    if step.fetch == "all":
        return await cur.fetchall()
    if step.fetch == "one":
        return await cur.fetchone()
    return None
