"""Two eventkeep source trees side by side, on the same machine in one run:

    python -m benchmarks.compare --before /path/to/old/checkout --after . [--rounds 5]

Runs the harness (``python -m benchmarks --quick --systems eventkeep --skip-dcb``; ``--full``:
its full sizes, one repetition; the DCB appends are left out, since older trees have no DCB)
once per round for each tree, alternating (before, after, before, after, ...) so that both see
the same machine, and prints each workload's median throughput for both and their ratio
(after / before). Each tree's ``src`` comes first on ``PYTHONPATH``; everything else (drivers,
the PostgreSQL binaries, the
harness itself) is this checkout's.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r"^\[\d+\] eventkeep\s+(\w+)\s+(\d+) B\s+(.*?)\s+\(")
FIGURE = re.compile(r"(\w+) ([\d,]+) (events/s|aggregates/s)")
WRITERS = re.compile(r"^\[\d+\] eventkeep\s+writers\s+(.*)$")
WRITER_FIGURE = re.compile(r"(\w+) ([\d,]+)/s")


def run_once(tree: Path, harness_args: list[str], full: bool) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree / "src"), str(Path.cwd())])}
    sizes = ["--repeats", "1", "--output", tempfile.mkdtemp()] if full else ["--quick"]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            *sizes,
            "--systems",
            "eventkeep",
            "--skip-dcb",
            *harness_args,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    figures: dict[str, float] = {}
    for line in (out.stdout + out.stderr).splitlines():
        match = LINE.match(line)
        if match:
            backend, payload, rest = match.groups()
            for name, value, _ in FIGURE.findall(rest):
                figures[f"{backend} {payload} B {name}"] = float(value.replace(",", ""))
        match = WRITERS.match(line)
        if match:
            for name, value in WRITER_FIGURE.findall(match.group(1)):
                figures[f"postgres writers {name}"] = float(value.replace(",", ""))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, default=Path.cwd())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--full", action="store_true", help="the harness's full sizes (one repetition a round)"
    )
    parser.add_argument("harness", nargs="*", help="extra arguments for python -m benchmarks")
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {
        "before": defaultdict(list),
        "after": defaultdict(list),
    }
    for round_ in range(args.rounds):
        for label, tree in (("before", args.before), ("after", args.after)):
            for key, value in run_once(tree.resolve(), args.harness, args.full).items():
                results[label][key].append(value)
        print(f"round {round_ + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    print("| workload | before | after | after / before |")
    print("|---|---:|---:|---:|")
    for key in sorted(results["after"]):
        before = results["before"].get(key)
        after = results["after"][key]
        if not before:
            continue
        b, a = statistics.median(before), statistics.median(after)
        print(f"| {key} | {b:,.0f} | {a:,.0f} | {a / b:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
