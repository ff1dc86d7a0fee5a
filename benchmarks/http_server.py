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

    python -m benchmarks.http_server                       # both parts, PostgreSQL
    python -m benchmarks.http_server --part live --subscribers 200 --seconds 5
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


_T = re.compile(rb'"t":([0-9.]+)')


async def subscriber(
    host: str, port: int, token: str, latencies: list[float], counts: list[int]
) -> None:
    """One SSE client on a raw socket. Each event carries the wall time its append was called
    (``t``); a frame's latency is the time of the read that brought it minus that."""
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
    writer.write(
        (
            f"GET /v1/log/live HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    counts[0] += 1  # connected
    pending = b""
    try:
        while True:
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
                counts[2] += 1
                return
            for match in _T.finditer(whole):
                latencies.append(now - float(match.group(1)))
                counts[1] += 1
    finally:
        writer.close()


def subscriber_process(
    base: str, token: str, count: int, ready: object, finish: object, out: object
) -> None:
    """A process of ``count`` subscribers: connects them, says so, reads until told to stop,
    then sends back (connected, delivered, dropped, a sample of latencies)."""

    async def run() -> tuple[list[int], list[float]]:
        host, port = base.removeprefix("http://").split(":")
        latencies: list[float] = []
        counts = [0, 0, 0]
        tasks = []
        for _ in range(count):
            tasks.append(asyncio.create_task(subscriber(host, int(port), token, latencies, counts)))
            if len(tasks) % 50 == 0:
                await asyncio.sleep(0.02)
        while counts[0] < count:
            await asyncio.sleep(0.05)
        ready.set()  # type: ignore[attr-defined]
        while not finish.is_set():  # type: ignore[attr-defined]
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return counts, latencies

    counts, latencies = asyncio.run(run())
    step = max(1, len(latencies) // 200_000)
    out.put((counts, latencies[::step]))  # type: ignore[attr-defined]


def appender(url: str, rate: int, seconds: float, writers: int = 8) -> int:
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
                event = eventkeep.RawEvent("Ticked", {"t": time.time()})
                store.append(f"live-{number}", [event])
                counts[number] += 1

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return sum(counts)


def live_run(
    base: str, pid: int, url: str, token: str, count: int, rate: int, seconds: float, procs: int
) -> list[str]:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    finish = context.Event()
    readies = [context.Event() for _ in range(procs)]
    shares = [count // procs + (1 if i < count % procs else 0) for i in range(procs)]
    workers = [
        context.Process(target=subscriber_process, args=(base, token, n, r, finish, out))
        for n, r in zip(shares, readies, strict=True)
    ]
    idle_rss = rss_kib(pid)
    for worker in workers:
        worker.start()
    for ready in readies:
        if not ready.wait(120):
            raise RuntimeError("the subscribers did not all connect")
    time.sleep(1.0)
    connected_rss = rss_kib(pid)
    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
    result: list[int] = []
    writer = threading.Thread(target=lambda: result.append(appender(url, rate, seconds)))
    writer.start()
    peak = connected_rss
    while writer.is_alive():
        peak = max(peak, rss_kib(pid))
        time.sleep(0.2)
    appended = result[0]
    for _ in range(25):  # the tail: up to 5 s
        peak = max(peak, rss_kib(pid))
        time.sleep(0.2)
    wall = time.monotonic() - wall_before
    server_cpu = cpu_seconds(pid) - cpu_before
    finish.set()
    connected = delivered = dropped = 0
    latencies: list[float] = []
    for _ in workers:
        (c, d, x), sample = out.get(timeout=120)
        connected, delivered, dropped = connected + c, delivered + d, dropped + x
        latencies += sample
    for worker in workers:
        worker.join(30)
    expected = appended * count
    lat = latencies or [float("nan")]
    return [
        f"## Live: {count:,} SSE subscribers, {rate} events/s asked for {seconds:g} s "
        f"(PostgreSQL, 1 server process; subscribers in {procs} client processes)",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| events appended | {appended:,} ({appended / seconds:,.0f}/s achieved) |",
        f"| frames delivered (within 5 s of the last append) | {delivered:,} of "
        f"{expected:,} ({delivered / max(1, expected):.1%}) |",
        f"| subscribers dropped for falling behind | {dropped:,} |",
        f"| delivery latency p50 (append called -> frame read) | "
        f"{statistics.median(lat) * 1e3:,.1f} ms |",
        f"| delivery latency p99 | {percentile(lat, 0.99) * 1e3:,.1f} ms |",
        f"| server CPU during the run | {server_cpu / wall:.0%} of one core |",
        f"| server RSS idle / with subscribers / peak | {idle_rss / 1024:,.0f} / "
        f"{connected_rss / 1024:,.0f} / {peak / 1024:,.0f} MiB |",
    ]


def live_part(server: object, count: int, rate: int, seconds: float, procs: int) -> list[str]:
    with server.database() as target:  # type: ignore[attr-defined]
        url = target.pg_url
        with eventkeep.open_store(url) as store:
            token, _ = create_token(store, name="bench", scope="read")
        with serve(url) as (base, process):
            return live_run(base, process.pid, url, token, count, rate, seconds, procs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["appends", "live", "both"], default="both")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--appends", type=int, default=100, help="appends per client")
    parser.add_argument("--subscribers", default="100,1000", help="comma-separated counts")
    parser.add_argument("--rate", type=int, default=500, help="events appended per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client-processes", type=int, default=2, help="for the subscribers")
    args = parser.parse_args(argv)
    from benchmarks.pg import Server

    server = Server()
    try:
        print(f"PostgreSQL {server.version}: {server.description}; {os.cpu_count()} CPUs\n")
        if args.part in ("appends", "both"):
            print("\n".join(appends_part(server, args.clients, args.appends)) + "\n", flush=True)
        if args.part in ("live", "both"):
            for count in (int(c) for c in args.subscribers.split(",") if c):
                lines = live_part(server, count, args.rate, args.seconds, args.client_processes)
                print("\n".join(lines) + "\n", flush=True)
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
