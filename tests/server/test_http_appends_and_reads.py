"""The JSON API: appends with expected versions, idempotent re-sends, reads, DCB, problems."""

from __future__ import annotations

import uuid

from http_harness import RunningServer


def deposit(amount: str = "10", **extra: object) -> dict[str, object]:
    return {"type": "Deposited", "data": {"amount": amount}, **extra}


def test_an_append_returns_201_with_versions_positions_and_an_etag(server: RunningServer) -> None:
    with server.client("append") as http:
        r = http.post(
            "/v1/streams/acc-1",
            json={"events": [deposit(), deposit("5")], "expected_version": "no_stream"},
        )
    assert r.status_code == 201
    assert r.json()["versions"] == [1, 2]
    assert r.json()["positions"] == [1, 2]
    assert r.json()["replayed"] is False
    assert r.headers["etag"] == '"2"'


def test_a_resend_with_the_same_event_ids_returns_200_and_the_original_result(
    server: RunningServer,
) -> None:
    body = {"events": [deposit(event_id=str(uuid.uuid4()))], "expected_version": 0}
    with server.client("append") as http:
        first = http.post("/v1/streams/acc-1", json=body)
        http.post("/v1/streams/acc-1", json={"events": [deposit("1")]})
        again = http.post("/v1/streams/acc-1", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["positions"] == first.json()["positions"] == [1]
    assert again.json()["replayed"] is True
    assert server.store.stream_version("acc-1") == 2


def test_a_wrong_expected_version_is_a_409_problem_with_both_versions(
    server: RunningServer,
) -> None:
    with server.client("append") as http:
        http.post("/v1/streams/acc-1", json={"events": [deposit()]})
        r = http.post("/v1/streams/acc-1", json={"events": [deposit()], "expected_version": 0})
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["error"] == "ConcurrencyError"
    assert (problem["expected_version"], problem["actual_version"]) == (0, 1)
    assert "Traceback" not in r.text
    assert server.store.stream_version("acc-1") == 1


def test_if_match_carries_the_expected_version_from_a_read_etag(server: RunningServer) -> None:
    with server.client("append") as http:
        http.post("/v1/streams/acc-1", json={"events": [deposit()]})
        etag = http.get("/v1/streams/acc-1").headers["etag"]
        ok = http.post(
            "/v1/streams/acc-1", json={"events": [deposit()]}, headers={"If-Match": etag}
        )
        stale = http.post(
            "/v1/streams/acc-1", json={"events": [deposit()]}, headers={"If-Match": etag}
        )
    assert etag == '"1"'
    assert ok.status_code == 201
    assert stale.status_code == 409


def test_reads_of_a_stream_page_by_version_and_backwards(server: RunningServer) -> None:
    with server.client("append") as http:
        http.post("/v1/streams/acc-1", json={"events": [deposit(str(i)) for i in range(5)]})
        forwards = http.get("/v1/streams/acc-1", params={"from": 2, "to": 4}).json()
        last = http.get("/v1/streams/acc-1", params={"backwards": "true", "limit": 1}).json()
        missing = http.get("/v1/streams/nobody")
    assert [e["version"] for e in forwards["events"]] == [2, 3, 4]
    assert [e["data"]["amount"] for e in last["events"]] == ["4"]
    assert missing.status_code == 404
    assert missing.json()["error"] == "NotFoundError"


def test_the_log_filters_by_type_and_prefix_and_pages_with_after(server: RunningServer) -> None:
    with server.client("append") as http:
        http.post(
            "/v1/streams/acc-1", json={"events": [deposit(), {"type": "Withdrawn", "data": {}}]}
        )
        http.post("/v1/streams/user-1", json={"events": [deposit()]})
        by_type = http.get("/v1/log", params={"type": "Withdrawn"}).json()
        by_prefix = http.get("/v1/log", params={"prefix": "user-"}).json()
        page = http.get("/v1/log", params={"after": 1, "limit": 1}).json()
        streams = http.get("/v1/streams", params={"prefix": "acc"}).json()
    assert [e["type"] for e in by_type["events"]] == ["Withdrawn"]
    assert [e["stream_id"] for e in by_prefix["events"]] == ["user-1"]
    assert [e["position"] for e in page["events"]] == [2]
    assert page["next_after"] == 2
    assert page["head"] == 3
    assert streams["streams"] == [{"stream_id": "acc-1", "version": 2, "last_position": 2}]


def test_a_dcb_append_fails_when_its_condition_matches_an_event_appended_meanwhile(
    server: RunningServer,
) -> None:
    item = {"types": ["Registered"], "tags": ["user:ann"]}
    registered = {"type": "Registered", "data": {"name": "ann"}, "tags": ["user:ann"]}
    with server.client("append") as http:
        read = http.post("/v1/query", json={"items": [item]}).json()
        condition = {"items": [item], "after": read["head"]}
        first = http.post("/v1/append", json={"events": [registered], "condition": condition})
        second = http.post("/v1/append", json={"events": [registered], "condition": condition})
        found = http.post("/v1/query", json={"items": [item]}).json()
    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["error"] == "AppendConditionError"
    assert [e["tags"] for e in found["events"]] == [["user:ann"]]


def test_bad_input_is_a_400_problem_naming_what_was_wrong(server: RunningServer) -> None:
    with server.client("append") as http:
        not_json = http.post("/v1/streams/acc-1", content=b"{nope")
        no_events = http.post("/v1/streams/acc-1", json={"events": []})
        bad_expected = http.post(
            "/v1/streams/acc-1", json={"events": [deposit()], "expected_version": "soon"}
        )
        bad_limit = http.get("/v1/log", params={"limit": "many"})
    for r in (not_json, no_events, bad_expected, bad_limit):
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "ValidationError"
    assert "expected_version" in bad_expected.json()["detail"]
    assert "limit" in bad_limit.json()["detail"]
    assert server.store.head_position() == 0


def test_a_body_over_the_size_limit_is_refused_with_413(sqlite_store) -> None:  # type: ignore[no-untyped-def]
    running = RunningServer(sqlite_store, max_body_bytes=2048)
    try:
        with running.client("append") as http:
            r = http.post("/v1/streams/acc-1", json={"events": [deposit("x" * 5000)]})
        assert r.status_code == 413
        assert sqlite_store.head_position() == 0
    finally:
        running.stop()


def test_a_traceparent_header_is_carried_into_the_events_metadata(server: RunningServer) -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with server.client("append") as http:
        http.post(
            "/v1/streams/acc-1", json={"events": [deposit()]}, headers={"traceparent": parent}
        )
    [event] = server.store.read_stream("acc-1")
    assert event.metadata["traceparent"] == parent


def test_metrics_count_appended_events_and_latency(server: RunningServer) -> None:
    with server.client("append") as http:
        http.post("/v1/streams/acc-1", json={"events": [deposit(), deposit()]})
        text = http.get("/metrics").text
    assert "eventkeep_events_appended_total 2" in text
    assert "eventkeep_append_duration_seconds_count 1" in text
    assert 'eventkeep_append_duration_seconds_bucket{le="+Inf"} 1' in text
    assert "eventkeep_live_subscribers 0" in text
