"""The bank as a small web service on ``eventkeep.aio``: its commands and its read models over
HTTP (Starlette; needs the ``server`` extra: ``pip install 'eventkeep[server]'``).

::

    python -m eventkeep.examples.bank.service sqlite:///bank.db        # on 127.0.0.1:8000
    curl -X POST localhost:8000/accounts -d '{"id": "alice", "owner": "Alice"}'
    curl -X POST localhost:8000/accounts/alice/deposits -d '{"amount": "10.00"}'
    curl localhost:8000/accounts/alice
    curl 'localhost:8000/balances?after=2'        # the read model, once it has seen position 2

Commands go through an :class:`~eventkeep.aio.AsyncRepository` of the class-based
``BankAccount`` (``execute``: load, run, save, retried on a concurrent change); the read models
(``AccountBalances``, ``DailyTransactions``) are kept by an :class:`~eventkeep.aio.AsyncRunner`
that runs while the app does. A command's answer carries the log position its events reached;
a read with ``?after=<position>`` waits until the read model has seen it (read your writes).
The read models are SQL tables: they need SQLite or PostgreSQL (on ``memory://`` the read
endpoints answer 501).

Routes: ``POST /accounts``, ``POST /accounts/{id}/deposits``, ``POST /accounts/{id}/withdrawals``,
``POST /accounts/{id}/close``, ``GET /accounts/{id}`` (``?version=N``: as it was then),
``GET /accounts/{id}/history``, ``GET /balances``, ``GET /daily``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import weakref
from collections.abc import AsyncIterator, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

try:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installed extras
    raise ModuleNotFoundError(
        "the bank service needs Starlette: pip install 'eventkeep[server]'", name=exc.name
    ) from exc

import eventkeep.aio
from eventkeep.aio import AsyncEventStore, AsyncRepository, AsyncRunner
from eventkeep.errors import ConcurrencyError, NotFoundError, ValidationError
from eventkeep.examples.bank.account import BankAccount, BankError, InsufficientFundsError
from eventkeep.examples.bank.readmodels import AccountBalances, DailyTransactions

__all__ = ["create_app", "main"]

READ_WAIT = 10.0
"""Seconds a read with ``?after=`` waits for the read model before answering 503."""


class _Problem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(url: str, **options: Any) -> Starlette:
    """The service on the store at ``url`` (opened at start-up, closed at shutdown)."""
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await eventkeep.aio.open_store(url, **options)
        state["store"] = store
        state["accounts"] = AsyncRepository(store, BankAccount)
        runner = None
        if _has_sql(store):
            runner = AsyncRunner(store, [AccountBalances(), DailyTransactions()])
            state["runner"] = asyncio.create_task(runner.run())
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
                await state["runner"]
            await store.close()

    def store() -> AsyncEventStore:
        found: AsyncEventStore = state["store"]
        return found

    def accounts() -> AsyncRepository[BankAccount]:
        found: AsyncRepository[BankAccount] = state["accounts"]
        return found

    locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def command(id: str, run: Callable[[BankAccount], None], *, create: bool) -> Any:
        done: list[BankAccount] = []

        def step(account: BankAccount) -> None:
            run(account)
            done.append(account)

        # One command per account at a time in this process (no retry wasted on a conflict
        # between two requests here); execute's retries handle other processes.
        lock = locks.setdefault(id, asyncio.Lock())
        async with lock:
            await accounts().execute(id, step, create=create)
        position = await store().head_position()
        return JSONResponse(
            {"id": id, "version": done[-1].version, "position": position},
            status_code=201 if create else 200,
        )

    async def open_account(request: Request) -> Any:
        body = await _body(request)
        id = _text(body, "id")
        owner, currency = _text(body, "owner"), str(body.get("currency", "EUR"))
        return await command(id, lambda a: a.open(owner=owner, currency=currency), create=True)

    async def deposit(request: Request) -> Any:
        body = await _body(request)
        amount, reference = _amount(body), body.get("reference")
        id = request.path_params["id"]
        return await command(id, lambda a: a.deposit(amount, reference=reference), create=False)

    async def withdraw(request: Request) -> Any:
        body = await _body(request)
        amount, reference = _amount(body), body.get("reference")
        id = request.path_params["id"]
        return await command(id, lambda a: a.withdraw(amount, reference=reference), create=False)

    async def close(request: Request) -> Any:
        return await command(request.path_params["id"], lambda a: a.close(), create=False)

    async def account(request: Request) -> Any:
        version = request.query_params.get("version")
        at = _number(version, "version") if version is not None else None
        found = await accounts().load(request.path_params["id"], at_version=at)
        return JSONResponse(_account(found))

    async def history(request: Request) -> Any:
        entries = await accounts().history(request.path_params["id"])
        return JSONResponse(
            [
                {
                    "version": entry.version,
                    "type": entry.recorded.type,
                    "recorded_at": entry.recorded_at.isoformat(),
                    "balance": str(entry.state.balance),
                }
                for entry in entries
            ]
        )

    async def balances(request: Request) -> Any:
        rows = await _read_model(
            request,
            store(),
            AccountBalances.name,
            "SELECT account, owner, balance_cents, events FROM account_balances ORDER BY account",
        )
        return JSONResponse(
            [
                {"account": a, "owner": o, "balance": str(Decimal(c) / 100), "events": n}
                for a, o, c, n in rows
            ]
        )

    async def daily(request: Request) -> Any:
        rows = await _read_model(
            request,
            store(),
            DailyTransactions.name,
            "SELECT day, kind, count, total_cents FROM daily_transactions ORDER BY day, kind",
        )
        return JSONResponse(
            [
                {"day": d, "kind": k, "count": n, "total": str(Decimal(c) / 100)}
                for d, k, n, c in rows
            ]
        )

    routes = [
        Route("/accounts", _answering(open_account), methods=["POST"]),
        Route("/accounts/{id}", _answering(account), methods=["GET"]),
        Route("/accounts/{id}/history", _answering(history), methods=["GET"]),
        Route("/accounts/{id}/deposits", _answering(deposit), methods=["POST"]),
        Route("/accounts/{id}/withdrawals", _answering(withdraw), methods=["POST"]),
        Route("/accounts/{id}/close", _answering(close), methods=["POST"]),
        Route("/balances", _answering(balances), methods=["GET"]),
        Route("/daily", _answering(daily), methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _answering(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """The handler, with the bank's and eventkeep's errors as JSON problems."""

    async def answer(request: Request) -> Any:
        try:
            return await handler(request)
        except _Problem as exc:
            return _problem(exc.status, str(exc))
        except InsufficientFundsError as exc:
            return _problem(409, str(exc))
        except BankError as exc:
            return _problem(422, str(exc))
        except NotFoundError as exc:
            return _problem(404, str(exc))
        except ConcurrencyError as exc:
            return _problem(409, f"the account kept changing; try again ({exc})")
        except ValidationError as exc:
            return _problem(422, str(exc))

    return answer


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _Problem(400, "the request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _Problem(400, "the request body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _Problem(422, f"{name} must be a non-empty string")
    return value


def _amount(body: dict[str, Any]) -> Decimal:
    value = body.get("amount")
    if not isinstance(value, str | int):
        raise _Problem(422, 'amount must be a decimal string, such as "10.00"')
    try:
        return Decimal(value)
    except InvalidOperation:
        raise _Problem(422, f"amount must be a decimal string, got {value!r}") from None


def _number(value: str, name: str) -> int:
    if not value.isdigit():
        raise _Problem(422, f"{name} must be a whole number, got {value!r}")
    return int(value)


def _account(account: BankAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "owner": account.owner,
        "currency": account.currency,
        "balance": str(account.balance),
        "open": account.is_open,
        "version": account.version,
    }


def _has_sql(store: AsyncEventStore) -> bool:
    return not store.url.startswith("memory:")


async def _read_model(
    request: Request, store: AsyncEventStore, name: str, query: str
) -> list[tuple[Any, ...]]:
    """The read model's rows, once it has seen position ``?after=`` (if given)."""
    if not _has_sql(store):
        raise _Problem(501, "the read models are SQL tables: run the service on SQLite or Postgres")
    after = request.query_params.get("after")
    if after is not None and not await store.wait_for_projection(
        name, _number(after, "after"), READ_WAIT
    ):
        raise _Problem(503, f"the read model {name} has not reached position {after} yet")
    async with store.transaction() as tx:
        return await tx.execute(query)


def main(argv: list[str] | None = None) -> None:
    """``python -m eventkeep.examples.bank.service [STORE_URL] [PORT]``."""
    import uvicorn

    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else "sqlite:///bank.db"
    port = int(args[1]) if len(args) > 1 else 8000
    uvicorn.run(create_app(url), host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
