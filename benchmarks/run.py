"""Run the benchmarks: eventkeep vs eventsourcing vs the raw driver floors, side by side.

    python -m benchmarks                     # everything, median of 3 (about 7 minutes)
    python -m benchmarks --quick             # a smoke run: small sizes, one repetition
    python -m benchmarks --backends sqlite --systems eventkeep,raw --workloads command,batch
    python benchmarks/run.py --quick         # the same, without -m

Writes ``results.md``, ``results.json`` and ``chart.png`` to ``benchmarks/results/`` (a full
run) or to a temporary directory (``--quick``, unless ``--output`` is given), and prints the
markdown. See benchmarks/README.md for what each workload does.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import report
from benchmarks.concurrency import make_subject, run_writers
from benchmarks.systems import es
from benchmarks.systems.base import Target, reference_for
from benchmarks.workloads import ALL, FULL, QUICK, SUITE, Sizes, run_side_by_side

RESULTS = Path(__file__).resolve().parent / "results"
PAYLOAD_WORKLOADS = {256: set(ALL), 2048: {"command", "batch", "rehydrate", "read_all"}}
"""2 KiB runs the issue's per-payload workloads: the command loop, batch append, rehydrate and
reading the log. The create loop (not one of the issue's workloads; its time is the commit's),
the long aggregate, the writers and the catch-up run at 256 B only, to keep a full run short."""
MIN_FLOOR_WORKLOADS = {"command", "batch"}
"""The only workloads the minimal floor (``raw-min``) runs, at the smallest payload selected:
the report shows it for these."""
OTHERS_CATCHUP_REPEATS = 1
"""Catch-up repetitions of eventsourcing and the raw floor (eventkeep runs ``repeats``): the
target is eventkeep's absolute rate, and the 1,000,000 events are loaded once per system."""
FLOORS = ("raw", "raw-min")


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--backends", type=_csv, default=["memory", "sqlite", "postgres"])
    parser.add_argument("--systems", type=_csv, default=list(report.ALL_SYSTEMS))
    parser.add_argument(
        "--workloads", type=_csv, default=list(ALL), help=f"any of {', '.join(ALL)}"
    )
    parser.add_argument("--payloads", type=_csv, default=["256", "2048"], help="bytes")
    parser.add_argument("--repeats", type=int, help="repetitions (default 3, quick 1)")
    parser.add_argument("--catchup-events", type=int, help="default 1,000,000 (quick 20,000)")
    parser.add_argument("--catchup-backends", type=_csv, default=["sqlite"], help="default: sqlite")
    parser.add_argument("--writer-seconds", type=float, help="per concurrency level")
    parser.add_argument("--output", type=Path, help="default: benchmarks/results (full runs)")
    parser.add_argument(
        "--skip-dcb",
        action="store_true",
        help="leave out the DCB appends (python -m benchmarks.dcb's first part)",
    )
    args = parser.parse_args(argv)
    unknown = set(args.workloads) - set(ALL)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {', '.join(ALL)}")
    if set(args.backends) - set(report.BACKENDS):
        parser.error(f"backends are {', '.join(report.BACKENDS)}")
    if set(args.systems) - set(report.ALL_SYSTEMS):
        parser.error(f"systems are {', '.join(report.ALL_SYSTEMS)}")
    return args


def sizes_for(args: argparse.Namespace) -> Sizes:
    sizes = QUICK if args.quick else FULL
    changes: dict[str, Any] = {}
    if args.repeats:
        changes["repeats"] = args.repeats
    if args.catchup_events:
        changes["catchup_events"] = args.catchup_events
    if args.writer_seconds:
        changes["writer_seconds"] = args.writer_seconds
    return Sizes(**{**sizes.__dict__, **changes})


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = sizes_for(args)
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.systems = list(args.systems)
        self.backends = list(args.backends)
        self.workloads = set(args.workloads)
        self.payloads = [int(p) for p in args.payloads]
        self.tmp = Path(tempfile.mkdtemp(prefix="eventkeep-bench-"))
        self.server: Any = None
        self.dcb: list[str] = []
        if "eventsourcing" in self.systems and es.eventsourcing is None:
            log(f"note: {es.MISSING}")
            self.notes.append(es.MISSING)
            self.systems.remove("eventsourcing")

    # -- targets ------------------------------------------------------------------------------

    def start_postgres(self) -> None:
        if "postgres" not in self.backends and "postgres" not in self.args.catchup_backends:
            return
        try:
            from benchmarks.pg import Server

            log("starting a throwaway PostgreSQL cluster ...")
            self.server = Server()
        except Exception as exc:  # no server binaries, no psycopg: say so, run the rest
            message = f"PostgreSQL skipped: {type(exc).__name__}: {exc}"
            log(f"note: {message}")
            self.notes.append(message)
            self.backends = [b for b in self.backends if b != "postgres"]

    def target(self, backend: str, name: str) -> Any:
        """A context manager yielding a fresh, empty target."""
        import contextlib

        if backend == "postgres":
            return self.server.database()

        @contextlib.contextmanager
        def local() -> Any:
            path = self.tmp / f"{name}.db"
            try:
                yield Target(backend, path=str(path))
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)

        return local()

    def _systems_for(self, backend: str) -> list[str]:
        return [s for s in self.systems if not (s in FLOORS and backend == "memory")]

    # -- sections -----------------------------------------------------------------------------

    def run_suites(self) -> None:
        for rep in range(self.sizes.repeats):
            for payload in self.payloads:
                selected = self.workloads & set(SUITE) & PAYLOAD_WORKLOADS.get(payload, set(ALL))
                if not selected:
                    continue
                for backend in self.backends:
                    chosen: dict[str, set[str]] = {}
                    for system in self._systems_for(backend):
                        mine = selected
                        if system == "raw-min":
                            smallest = payload == min(self.payloads)
                            mine = selected & MIN_FLOOR_WORKLOADS if smallest else set()
                        if mine:
                            chosen[system] = mine
                    if chosen:
                        self._suites(chosen, backend, payload, rep)

    def _suites(self, chosen: dict[str, set[str]], backend: str, payload: int, rep: int) -> None:
        """The systems' suites side by side: each on its own fresh database, in turns
        (``workloads.run_side_by_side``), a different system first in each repetition."""
        started = time.perf_counter()
        with contextlib.ExitStack() as stack:
            subjects, others = {}, {}
            for system in chosen:
                target = stack.enter_context(self.target(backend, f"{system}-{payload}-{rep}"))
                subject = subjects[system] = make_subject(system, target)
                stack.callback(subject.close)
                # In memory a second subject would be a second, empty store.
                others[system] = (
                    None
                    if backend == "memory"
                    else functools.partial(make_subject, system, target, create_tables=False)
                )
            results = run_side_by_side(
                subjects,
                self.sizes,
                reference_for(payload),
                chosen,
                another=others,
                turn=rep,
            )
        for system, rows in results.items():
            for row in rows:
                row.update(system=system, backend=backend, payload=payload, repeat=rep)
            self.rows.extend(rows)
            summary = ", ".join(f"{r['workload']} {r['value']:,.0f} {r['unit']}" for r in rows)
            log(f"[{rep + 1}] {system:13} {backend:8} {payload:>5} B  {summary}")
        log(f"[{rep + 1}] {backend} {payload} B side by side: {time.perf_counter() - started:.1f}s")

    def run_writers(self) -> None:
        if "writers" not in self.workloads or "postgres" not in self.backends:
            return
        sizes, payload = self.sizes, self.payloads[0]
        systems = [s for s in self.systems if s != "raw-min"]
        for rep in range(sizes.repeats):
            with contextlib.ExitStack() as stack:
                targets = {
                    system: stack.enter_context(self.server.database()) for system in systems
                }
                results = run_writers(
                    targets,
                    sizes.writer_levels,
                    sizes.hot_writers,
                    sizes.writer_seconds,
                    reference_for(payload),
                    turn=rep,
                )
            for system, rows in results.items():
                for row in rows:
                    row.update(system=system, backend="postgres", payload=payload, repeat=rep)
                self.rows.extend(rows)
                summary = ", ".join(f"{r['workload']} {r['value']:,.0f}/s" for r in rows)
                log(f"[{rep + 1}] {system:13} writers   {summary}")

    def run_catchup(self) -> None:
        if "catchup" not in self.workloads:
            return
        sizes, payload = self.sizes, self.payloads[0]
        from benchmarks.systems.ek import CATCH_UP_HOW

        self.notes.append(
            f"Projection catch-up over {sizes.catchup_events:,} events in "
            f"{sizes.catchup_streams:,} streams: eventkeep with {CATCH_UP_HOW}; eventsourcing "
            "pages its notification log (select_notifications) and decodes each notification "
            "with its mapper into a balance fold (it has no runner over a plain application); "
            "the raw floor pages the table and json-decodes. The events are loaded once per "
            f"system; eventkeep catches up {sizes.repeats} time(s), the others "
            f"{min(OTHERS_CATCHUP_REPEATS, sizes.repeats)}."
        )
        backends = [b for b in self.args.catchup_backends if b in self.backends or b != "postgres"]
        for backend in backends:
            for system in [s for s in self._systems_for(backend) if s != "raw-min"]:
                with self.target(backend, f"catchup-{system}") as target:
                    subject = make_subject(system, target)
                    try:
                        self._catchup(subject, system, backend, payload)
                    finally:
                        subject.close()

    def run_dcb(self) -> None:
        """``python -m benchmarks.dcb``'s appends (a conditional append against a plain one and
        against eventsourcing's DCB recorder), about 10 s; its query reads over stores of up to
        1,000,000 events take minutes to fill, and stay in ``python -m benchmarks.dcb``."""
        if self.args.skip_dcb:
            return
        from benchmarks import dcb

        ops, repeats = (30, 1) if self.args.quick else (300, self.sizes.repeats)
        log("DCB appends ...")
        folder = self.tmp / "dcb"
        folder.mkdir(exist_ok=True)
        self.dcb = dcb.appends(self.backends, ops, repeats, self.server, folder)

    def _catchup(self, subject: Any, system: str, backend: str, payload: int) -> None:
        sizes = self.sizes
        started = time.perf_counter()
        subject.fill(sizes.catchup_streams, sizes.catchup_events, reference_for(payload))
        fill = time.perf_counter() - started
        log(f"    {system:13} {backend:8} filled {sizes.catchup_events:,} in {fill:.1f}s")
        repeats = sizes.repeats if system == "eventkeep" else OTHERS_CATCHUP_REPEATS
        for rep in range(min(repeats, sizes.repeats)):
            started = time.perf_counter()
            count = subject.catch_up()
            elapsed = time.perf_counter() - started
            if count != sizes.catchup_events:
                raise AssertionError(f"{system} caught up on {count} events")
            self.rows.append(
                {
                    "workload": "catchup",
                    "value": count / elapsed,
                    "unit": "events/s",
                    "events": count,
                    "fill_events_per_s": sizes.catchup_events / fill,
                    "system": system,
                    "backend": backend,
                    "payload": payload,
                    "repeat": rep,
                }
            )
            log(f"[{rep + 1}] {system:13} {backend:8} catch-up {count / elapsed:,.0f} events/s")

    # -- the whole run ------------------------------------------------------------------------

    def meta(self, wall: float, load_before: tuple[float, ...]) -> dict[str, Any]:
        import msgspec

        info: dict[str, Any] = {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} cores, {_cpu_model()}",
            "mode": "quick" if self.args.quick else "full",
            "repeats": self.sizes.repeats,
            "wall_seconds": round(wall, 1),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "msgspec": msgspec.__version__,
            "eventsourcing": es.VERSION,
            "sizes": {k: v for k, v in self.sizes.__dict__.items() if k != "repeats"},
            "sqlite_settings": "WAL, synchronous=FULL for every system",
            "eventsourcing_sqlite_synchronous": _es_sqlite_synchronous(self.tmp),
        }
        if self.server is not None:
            info["postgres"] = {
                "version": self.server.version,
                "server": self.server.description,
                **self.server.settings,
            }
        return info

    def run(self) -> int:
        load_before = os.getloadavg()
        started = time.perf_counter()
        try:
            self.start_postgres()
            self.run_suites()
            self.run_writers()
            self.run_catchup()
            self.run_dcb()
        finally:
            if self.server is not None:
                self.server.close()
            meta = self.meta(time.perf_counter() - started, load_before)
            shutil.rmtree(self.tmp, ignore_errors=True)
        if max(load_before[0], meta["load_average_after"][0]) > 0.5:
            self.notes.append(
                "The machine was shared with other work while this ran (load average "
                f"{load_before[0]:.2f} before, {meta['load_average_after'][0]:.2f} after, on "
                f"{os.cpu_count()} cores): absolute numbers are lower than on an idle machine; "
                "the ratios compare runs made side by side."
            )
        out = self.args.output
        if out is None:
            out = Path(tempfile.mkdtemp(prefix="eventkeep-bench-")) if self.args.quick else RESULTS
        text = report.write(self.rows, meta, self.notes, out)
        if self.dcb:
            text = _add_dcb(out, text, self.dcb)
        print(text)
        log(f"results written to {out} ({meta['wall_seconds']}s)")
        return 0


def _add_dcb(out: Path, text: str, lines: list[str]) -> str:
    """The DCB section added to ``results.md`` (and, as its lines, to ``results.json``)."""
    text = text.rstrip("\n") + "\n\n# DCB (python -m benchmarks.dcb)\n\n" + "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    document = json.loads((out / "results.json").read_text())
    document["dcb"] = lines
    (out / "results.json").write_text(json.dumps(document, indent=1) + "\n")
    return text


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _es_sqlite_synchronous(folder: Path) -> str | None:
    """What ``synchronous`` eventsourcing's SQLite module runs with (it does not set it)."""
    if es.eventsourcing is None:
        return None
    subject = es.EventsourcingSubject(Target("sqlite", path=str(folder / "probe.db")))
    try:
        with subject.app.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA synchronous")
            value = cursor.fetchone()[0]
            cursor.execute("PRAGMA journal_mode")
            mode = cursor.fetchone()[0]
    finally:
        subject.close()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return f"journal_mode={mode}, synchronous={names.get(value, value)} (SQLite's default)"


def main(argv: list[str] | None = None) -> int:
    return Harness(parse(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
