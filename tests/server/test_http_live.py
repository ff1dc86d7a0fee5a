"""Live subscriptions (SSE): events arrive as appended; Last-Event-ID resumes exactly, after a
dropped connection and after a server restart; heartbeats; a slow subscriber is dropped."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from http_harness import RunningServer
from sse_client import frames, take

import eventkeep
from eventkeep.aio import AsyncEventStore
from eventkeep.server.live import Broker, sse_events
from eventkeep.server.tokens import create_token, revoke_token

SRC = str(Path(__file__).resolve().parents[2] / "src")


def deposit(amount: str) -> eventkeep.RawEvent:
    return eventkeep.RawEvent("Deposited", {"amount": amount})


def test_an_appended_event_arrives_on_the_live_log(server: RunningServer) -> None:
    with server.client("read") as http, http.stream("GET", "/v1/log/live") as live:
        assert live.headers["content-type"].startswith("text/event-stream")
        with server.client("append") as writer:
            writer.post("/v1/streams/acc-1", json={"events": [{"type": "Opened", "data": {}}]})
        [frame] = take(live, 1)
    assert frame.event == "event"
    assert frame.id == "1"
    assert frame.data["stream_id"] == "acc-1"
    assert frame.data["type"] == "Opened"


def test_last_event_id_resumes_exactly_after_a_dropped_connection(server: RunningServer) -> None:
    server.store.append("acc-1", [deposit(str(i)) for i in range(3)])
    with server.client("read") as http:
        with http.stream("GET", "/v1/log/live", params={"after": 0}) as live:
            first = take(live, 2)
        server.store.append("acc-2", [deposit("3"), deposit("4")])
        with http.stream(
            "GET", "/v1/log/live", headers={"Last-Event-ID": first[-1].id or ""}
        ) as live:
            rest = take(live, 3)
    assert [f.id for f in first] == ["1", "2"]
    assert [f.id for f in rest] == ["3", "4", "5"]
    assert [f.data["data"]["amount"] for f in rest] == ["2", "3", "4"]


def test_live_filters_by_type_prefix_stream_and_query(server: RunningServer) -> None:
    query = json.dumps([{"tags": ["vip"]}])
    with (
        server.client("read") as http,
        http.stream("GET", "/v1/log/live", params={"type": "Withdrawn", "after": 0}) as by_type,
        http.stream("GET", "/v1/log/live", params={"prefix": "user-", "after": 0}) as by_prefix,
        http.stream("GET", "/v1/streams/acc-1/live", params={"after": 0}) as by_stream,
        http.stream("GET", "/v1/query/live", params={"query": query, "after": 0}) as by_query,
    ):
        server.store.append("acc-1", [deposit("1")])
        server.store.append("acc-10", [eventkeep.RawEvent("Withdrawn", {})])
        server.store.append("user-1", [eventkeep.NewEvent(deposit("2"), tags=["vip"])])
        server.store.append("acc-1", [eventkeep.RawEvent("Withdrawn", {})])
        assert [f.id for f in take(by_type, 2)] == ["2", "4"]
        assert [f.id for f in take(by_prefix, 1)] == ["3"]
        assert [f.id for f in take(by_stream, 2)] == ["1", "4"]
        assert [f.id for f in take(by_query, 1)] == ["3"]


def test_heartbeats_keep_an_idle_subscription_open(server: RunningServer) -> None:
    with server.client("read") as http, http.stream("GET", "/v1/log/live") as live:
        comments = []
        for frame in frames(live):
            if isinstance(frame, str):
                comments.append(frame)
            if comments.count("heartbeat") == 2:
                break
    assert comments[0] == "connected"


def test_a_live_subscription_ends_once_its_token_is_revoked(server: RunningServer) -> None:
    token, record = create_token(server.store, name="watcher", scope="read")
    with (
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as http,
        http.stream("GET", "/v1/log/live") as live,
    ):
        revoke_token(server.store, record.token_id)
        last = [f for f in frames(live) if not isinstance(f, str)]  # until the server ends it
    assert [f.event for f in last] == ["unauthorized"]


def test_a_subscriber_that_falls_too_far_behind_is_dropped_and_told_where_to_resume() -> None:
    async def scenario() -> tuple[list[bytes], int]:
        store = AsyncEventStore(eventkeep.open_store("memory://"))
        broker = Broker(store, max_queue=5)
        await broker.start()

        async def catch_up(position: int) -> list[eventkeep.RecordedEvent]:
            return await store.read_all(position, 100).list()

        stream = sse_events(broker, lambda e: True, catch_up, 0, heartbeat=5)
        got = [await anext(stream)]  # connected
        await store.append("s", [deposit("0")])
        got.append(await anext(stream))  # caught up: the first event
        for i in range(20):  # the client reads nothing meanwhile
            await store.append("s", [deposit(str(i + 1))])
        for _ in range(100):
            if not broker.subscribers:
                break
            await asyncio.sleep(0.02)
        subscribers = len(broker.subscribers)
        got.append(await anext(stream))
        await stream.aclose()
        await broker.stop()
        await store.close()
        return got, subscribers

    got, subscribers = asyncio.run(scenario())
    assert subscribers == 0
    assert got[1].startswith(b"id: 1\n")
    assert got[2].startswith(b"event: dropped\n")
    assert json.loads(got[2].split(b"data: ")[1])["resume_after"] == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": SRC}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eventkeep",
            "serve",
            "--store",
            url,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("eventkeep serve did not start")


def test_last_event_id_resumes_exactly_after_a_server_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with eventkeep.open_store(url) as store:
        token, _ = create_token(store, name="reader", scope="read")
        store.append("acc-1", [deposit("0"), deposit("1")])
    port = _free_port()
    headers = {"Authorization": f"Bearer {token}"}
    process = _serve(url, port)
    try:
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as http,
            http.stream("GET", "/v1/log/live", params={"after": 0}) as live,
        ):
            before = take(live, 2)
            process.terminate()  # the connection drops with the server
            process.wait(10)
        with eventkeep.open_store(url) as store:  # appended while no server runs
            store.append("acc-1", [deposit("2"), deposit("3")])
        process = _serve(url, port)
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=10) as http,
            http.stream(
                "GET", "/v1/log/live", headers={"Last-Event-ID": before[-1].id or ""}
            ) as live,
        ):
            after = take(live, 2)
    finally:
        process.terminate()
        process.wait(10)
    assert [f.id for f in before] == ["1", "2"]
    assert [f.id for f in after] == ["3", "4"]
    assert [f.data["data"]["amount"] for f in after] == ["2", "3"]
