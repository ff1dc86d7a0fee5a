"""The bank as a web service on eventkeep.aio, driven through httpx's async client."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

import pg_fixtures
from eventkeep.examples.bank.service import create_app

SQL_BACKENDS = ["sqlite", *(["postgres"] if pg_fixtures.wanted() else [])]
_numbers = itertools.count()

Scenario = Callable[[httpx.AsyncClient], Awaitable[None]]


@pytest.fixture(params=SQL_BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / f'bank-{next(_numbers)}.db'}"
    return pg_fixtures.fresh_store_url(request)


def serve(url: str, scenario: Scenario) -> None:
    """Run ``scenario`` against the app on ``url``, its start-up and shutdown included."""

    async def main() -> None:
        app = create_app(url)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bank") as client:
                await scenario(client)

    asyncio.run(main())


async def opened(client: httpx.AsyncClient, id: str, owner: str) -> dict[str, int]:
    response = await client.post("/accounts", json={"id": id, "owner": owner})
    assert response.status_code == 201, response.text
    answer: dict[str, int] = response.json()
    return answer


def test_commands_change_the_account_and_the_read_model_follows(url: str) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        await opened(client, "alice", "Alice")
        await opened(client, "bob", "Bob")
        response = await client.post("/accounts/alice/deposits", json={"amount": "100.00"})
        assert response.status_code == 200
        response = await client.post("/accounts/alice/withdrawals", json={"amount": "30.50"})
        assert response.json()["version"] == 3
        position = response.json()["position"]

        account = (await client.get("/accounts/alice")).json()
        assert (account["owner"], account["balance"], account["version"]) == ("Alice", "69.50", 3)
        earlier = (await client.get("/accounts/alice", params={"version": 2})).json()
        assert earlier["balance"] == "100.00"
        history = (await client.get("/accounts/alice/history")).json()
        assert [h["balance"] for h in history] == ["0", "100.00", "69.50"]

        balances = (await client.get("/balances", params={"after": position})).json()
        assert {b["account"]: b["balance"] for b in balances} == {"alice": "69.5", "bob": "0"}
        daily = (await client.get("/daily", params={"after": position})).json()
        assert sorted((d["kind"], d["count"]) for d in daily) == [("deposit", 1), ("withdrawal", 1)]

    serve(url, scenario)


def test_concurrent_requests_on_one_account_all_count(url: str) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        await opened(client, "carol", "Carol")
        responses = await asyncio.gather(
            *(client.post("/accounts/carol/deposits", json={"amount": "1.00"}) for _ in range(20))
        )
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        assert sorted(r.json()["version"] for r in responses) == list(range(2, 22))
        account = (await client.get("/accounts/carol")).json()
        assert account["balance"] == "20.00"

    serve(url, scenario)


def test_refused_commands_answer_with_the_reason_and_store_nothing(url: str) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        await opened(client, "dave", "Dave")
        response = await client.post("/accounts/dave/withdrawals", json={"amount": "5.00"})
        assert response.status_code == 409
        assert "insufficient" in response.json()["error"].lower()
        response = await client.post("/accounts/nobody/deposits", json={"amount": "5.00"})
        assert response.status_code == 404
        response = await client.post("/accounts/dave/deposits", json={"amount": "-1"})
        assert response.status_code == 422
        response = await client.post("/accounts/dave/deposits", content=b"not json")
        assert response.status_code == 400
        response = await client.post("/accounts", json={"id": "dave", "owner": "Again"})
        assert response.status_code == 422
        account = (await client.get("/accounts/dave")).json()
        assert account["version"] == 1

    serve(url, scenario)


def test_on_the_memory_store_the_commands_work_and_read_models_answer_501() -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        await opened(client, "erin", "Erin")
        assert (await client.get("/accounts/erin")).json()["owner"] == "Erin"
        assert (await client.get("/balances")).status_code == 501

    serve("memory://", scenario)
