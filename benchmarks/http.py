"""The HTTP server under load, beside the library's direct figures, in one run.

1. Appends: ``--clients`` concurrent HTTP clients (default 32), each appending one event per
   request to its own stream, against one ``eventkeep serve`` process on PostgreSQL; then the
   same number of threads appending through the library directly to the same server's
   database (a fresh one). Events/s and per-append latency p50/p99 for both.
2. Live: ``--subscribers`` SSE subscribers (default 1,000) on one ``eventkeep serve`` process
   while events are appended at ``--rate`` per second (default 500) for ``--seconds``; the
   delivery latency (append committed -> frame read by the subscriber) p50/p99, events
   delivered, subscribers dropped for falling behind, and the server's resident memory before
   and at its peak.

Clients run in this process on one asyncio loop (raw sockets for the subscribers: 1,000 httpx
clients would measure httpx); the server is a separate process, as in production.

    python -m benchmarks.http                       # both parts, PostgreSQL
    python -m benchmarks.http --part live --subscribers 200 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

import eventkeep
from eventkeep.server.tokens import create_token

SRC = str(Path(__file__).resolve().parent.parent / "src")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ms(samples: list[float], fraction: float) -> str:
    return f"{percentile(samples, fraction) * 1e3:.1f}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextmanager
def serve(url: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
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
        stderr=subprocess.DEVNULL,  # a dropped client's socket errors are not the figures
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError("eventkeep serve did not start") from None
                time.sleep(0.1)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- 1. appends ---------------------------------------------------------------------------------


async def http_appends(
    base: str, token: str, clients: int, per_client: int, *, probe: bool = False
) -> tuple[float, list[float]]:
    """``probe``: GET /healthz instead (one head lookup): the HTTP stack's own ceiling."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as http:

        async def client(number: int) -> None:
            for i in range(per_client):
                began = time.perf_counter()
                if probe:
                    r = await http.get("/healthz")
                else:
                    r = await http.post(
                        f"/v1/streams/bench-{number}",
                        json={"events": [{"type": "Measured", "data": {"i": i}}]},
                    )
                latencies.append(time.perf_counter() - began)
                assert r.status_code in (200, 201), r.text

        began = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        return time.perf_counter() - began, latencies


def direct_appends(
    store: eventkeep.EventStore, clients: int, per_client: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()

    def writer(number: int) -> None:
        mine = []
        for i in range(per_client):
            began = time.perf_counter()
            store.append(f"bench-{number}", [eventkeep.RawEvent("Measured", {"i": i})])
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - began, latencies


def appends_part(server: object, clients: int, per_client: int) -> list[str]:
    lines = [
        f"## Appends: {clients} concurrent writers x {per_client} appends of 1 event (PostgreSQL)",
        "",
        "| path | events/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    total = clients * per_client
    with server.database() as target:  # type: ignore[attr-defined]
        url = target.pg_url + "?pool_max_size=" + str(min(clients, 32))
        with eventkeep.open_store(url) as store:
            token, _ = create_token(store, name="bench", scope="append")
        with serve(url) as (base, _):
            asyncio.run(http_appends(base, token, clients, 2))  # warm up
            seconds, latencies = asyncio.run(http_appends(base, token, clients, per_client))
            lines.append(
                f"| HTTP ({clients} clients, 1 server process) | {total / seconds:,.0f} | "
                f"{ms(latencies, 0.5)} | {ms(latencies, 0.99)} |"
            )
            seconds, latencies = asyncio.run(
                http_appends(base, token, clients, per_client, probe=True)
            )
            lines.append(
                f"| (HTTP stack alone: GET /healthz, requests/s) | {total / seconds:,.0f} | "
                f"{ms(latencies, 0.5)} | {ms(latencies, 0.99)} |"
            )
    with server.database() as target:  # type: ignore[attr-defined]
        url = target.pg_url + "?pool_max_size=" + str(min(clients, 32))
        with eventkeep.open_store(url) as store:
            direct_appends(store, clients, 2)
            seconds, latencies = direct_appends(store, clients, per_client)
        lines.append(
            f"| library directly ({clients} threads, 1 process) | {total / seconds:,.0f} | "
            f"{ms(latencies, 0.5)} | {ms(latencies, 0.99)} |"
        )
    return lines


# -- 2. live ------------------------------------------------------------------------------------


class Subscribers:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.delivered = 0
        self.dropped = 0
        self.connected = 0
        self.sent: dict[int, float] = {}  # position -> when its append was called
        self.early: list[tuple[int, float]] = []  # read before the appender noted its start


_ID = re.compile(rb"^id: (\d+)$", re.MULTILINE)


async def subscriber(
    host: str, port: int, token: str, stats: Subscribers, stop: asyncio.Event
) -> None:
    """One SSE client on a raw socket: frames are counted by their ``id:`` lines (the event's
    position), each timed from its append's start to the read that brought it."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    writer.write(
        (
            f"GET /v1/log/live HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    stats.connected += 1
    pending = b""
    try:
        while not stop.is_set():
            chunk = await reader.read(1 << 16)
            if not chunk:
                return
            now = time.time()
            pending += chunk
            cut = pending.rfind(b"\n\n")
            if cut < 0:
                continue
            whole, pending = pending[: cut + 2], pending[cut + 2 :]
            if b"event: dropped" in whole:
                stats.dropped += 1
                return
            for match in _ID.finditer(whole):
                position = int(match.group(1))
                sent = stats.sent.get(position)
                if sent is None:
                    stats.early.append((position, now))
                else:
                    stats.latencies.append(now - sent)
                stats.delivered += 1
    finally:
        writer.close()


def appender(url: str, rate: int, seconds: float, stats: Subscribers, writers: int = 8) -> int:
    """``rate`` appends of one event per second from ``writers`` threads (one writer cannot
    reach 500 fsync'd commits a second), for ``seconds``; returns how many were appended."""
    counts = [0] * writers
    with eventkeep.open_store(url + f"?pool_max_size={writers}") as store:
        began = time.monotonic()

        def write(number: int) -> None:
            while time.monotonic() - began < seconds:
                due = began + (counts[number] * writers + number) / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                sent = time.time()
                result = store.append(f"live-{number}", [eventkeep.RawEvent("Ticked", {})])
                stats.sent[result.position] = sent
                counts[number] += 1

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return sum(counts)


async def live_run(
    base: str, pid: int, url: str, token: str, count: int, rate: int, seconds: float
) -> list[str]:
    host, port = base.removeprefix("http://").split(":")
    stats = Subscribers()
    stop = asyncio.Event()
    idle_rss = rss_kib(pid)
    tasks = []
    for _ in range(count):
        tasks.append(asyncio.create_task(subscriber(host, int(port), token, stats, stop)))
        if len(tasks) % 100 == 0:
            await asyncio.sleep(0.05)
    while stats.connected < count:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    connected_rss = rss_kib(pid)
    done = asyncio.get_running_loop().run_in_executor(None, appender, url, rate, seconds, stats)
    peak = connected_rss
    while not done.done():
        peak = max(peak, rss_kib(pid))
        await asyncio.sleep(0.2)
    appended = await done
    tail = time.monotonic()
    while stats.delivered < appended * count and time.monotonic() - tail < 10:
        peak = max(peak, rss_kib(pid))
        await asyncio.sleep(0.2)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    expected = appended * count
    stats.latencies += [now - stats.sent[p] for p, now in stats.early if p in stats.sent]
    lat = stats.latencies or [float("nan")]
    return [
        f"## Live: {count:,} SSE subscribers, {rate} events/s appended for {seconds:g} s "
        "(PostgreSQL, 1 server process)",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| events appended | {appended:,} ({appended / seconds:,.0f}/s achieved) |",
        f"| frames delivered (within 10 s of the last append) | {stats.delivered:,} of "
        f"{expected:,} ({stats.delivered / max(1, expected):.1%}) |",
        f"| subscribers dropped for falling behind | {stats.dropped:,} |",
        f"| delivery latency p50 (append called -> frame read) | "
        f"{statistics.median(lat) * 1e3:,.1f} ms |",
        f"| delivery latency p99 | {percentile(lat, 0.99) * 1e3:,.1f} ms |",
        f"| server RSS idle / with subscribers / peak | {idle_rss / 1024:,.0f} / "
        f"{connected_rss / 1024:,.0f} / {peak / 1024:,.0f} MiB |",
    ]


def live_part(server: object, count: int, rate: int, seconds: float) -> list[str]:
    with server.database() as target:  # type: ignore[attr-defined]
        url = target.pg_url
        with eventkeep.open_store(url) as store:
            token, _ = create_token(store, name="bench", scope="read")
        with serve(url) as (base, process):
            return asyncio.run(live_run(base, process.pid, url, token, count, rate, seconds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["appends", "live", "both"], default="both")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--appends", type=int, default=100, help="appends per client")
    parser.add_argument("--subscribers", default="100,1000", help="comma-separated counts")
    parser.add_argument("--rate", type=int, default=500, help="events appended per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    from benchmarks.pg import Server

    server = Server()
    try:
        print(f"PostgreSQL {server.version}: {server.description}; {os.cpu_count()} CPUs\n")
        if args.part in ("appends", "both"):
            print("\n".join(appends_part(server, args.clients, args.appends)) + "\n", flush=True)
        if args.part in ("live", "both"):
            for count in (int(c) for c in args.subscribers.split(",") if c):
                lines = live_part(server, count, args.rate, args.seconds)
                print("\n".join(lines) + "\n", flush=True)
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
