"""The API over each backend (memory, SQLite, PostgreSQL): an append, a read and a live event;
and two servers fronting one database, the second seeing the first's appends live."""

from __future__ import annotations

from collections.abc import Callable

from http_harness import RunningServer
from sse_client import take

import eventkeep
from eventkeep import EventStore

EVENT = {"type": "Opened", "data": {"owner": "ann"}}


def test_append_read_and_live_on_every_backend(store: EventStore) -> None:
    server = RunningServer(store)
    try:
        with server.client("append") as http, http.stream("GET", "/v1/log/live") as live:
            created = http.post(
                "/v1/streams/acc-1", json={"events": [EVENT], "expected_version": 0}
            )
            read = http.get("/v1/streams/acc-1")
            [frame] = take(live, 1)
    finally:
        server.stop()
    assert created.status_code == 201
    assert read.json()["events"][0]["data"] == {"owner": "ann"}
    assert frame.data["position"] == created.json()["position"]


def test_two_servers_on_one_database_see_each_others_appends_live(
    backend: str, make_store: Callable[..., EventStore]
) -> None:
    if backend == "memory":  # a memory store cannot be shared by two servers
        return
    first = make_store()
    second = eventkeep.open_store(first.url)  # the same file or schema, another store object
    a, b = RunningServer(first), RunningServer(second)
    try:
        with (
            b.client("read") as reader,
            reader.stream("GET", "/v1/log/live", params={"after": 0}) as live,
            a.client("append") as writer,
        ):
            writer.post("/v1/streams/acc-1", json={"events": [EVENT]})
            writer.post("/v1/streams/acc-2", json={"events": [EVENT]})
            frames = take(live, 2)
    finally:
        a.stop()
        b.stop()
        second.close()
    assert [f.data["stream_id"] for f in frames] == ["acc-1", "acc-2"]
