"""Profile one workload of one system under cProfile: where does the time of a workload go?

    python -m benchmarks.profiling command sqlite                 # eventkeep, 256 B payload
    python -m benchmarks.profiling batch postgres --system eventsourcing --sort tottime
    python -m benchmarks.profiling read_all sqlite --payload 2048 --limit 40

The workload runs at full size (``--quick`` for the small one) on a fresh database; only its
timed sections are profiled (``command`` includes the ``create`` of its accounts).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import sys
from collections.abc import Iterator
from dataclasses import replace

from benchmarks.concurrency import make_subject
from benchmarks.run import Harness, parse
from benchmarks.systems.base import reference_for
from benchmarks.workloads import FULL, QUICK, SUITE, run_suite


@contextlib.contextmanager
def _profiling(profiler: cProfile.Profile) -> Iterator[None]:
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling", description=__doc__)
    parser.add_argument("workload", choices=SUITE)
    parser.add_argument("backend", choices=("memory", "sqlite", "postgres"))
    parser.add_argument("--system", default="eventkeep")
    parser.add_argument("--payload", type=int, default=256)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--limit", type=int, default=30)
    args = parser.parse_args(argv)
    harness = Harness(parse(["--backends", args.backend, "--systems", args.system]))
    harness.start_postgres()
    sizes = replace(QUICK if args.quick else FULL, repeats=1)
    profiler = cProfile.Profile()

    def profiled() -> contextlib.AbstractContextManager[None]:
        return _profiling(profiler)

    try:
        with harness.target(args.backend, "profile") as target:
            subject = make_subject(args.system, target)
            try:
                rows = run_suite(
                    subject, sizes, reference_for(args.payload), {args.workload}, profiled
                )
            finally:
                subject.close()
    finally:
        if harness.server is not None:
            harness.server.close()
    for row in rows:
        print(f"{row['workload']}: {row['value']:,.1f} {row['unit']} (under the profiler)")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats(args.sort).print_stats(args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
