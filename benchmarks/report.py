"""Turn the raw measurements into medians, ratios, target verdicts, markdown, JSON and a chart."""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

SYSTEMS = ("eventkeep", "eventsourcing", "raw")
"""The table columns; "raw" is the equivalent floor (``systems/raw.py``)."""
MIN_FLOOR = "raw-min"
"""The minimal floor (``systems/raw_min.py``): one line per batch/command figure, not a column."""
ALL_SYSTEMS = (*SYSTEMS, MIN_FLOOR)
BACKENDS = ("memory", "sqlite", "postgres")

LABELS = {
    "create": "create + save, 1 event per transaction",
    "command": "command loop: load + command + save 1 event",
    "command_other": "the same, on aggregates another store object wrote",
    "batch": "batch append, 100 events per transaction",
    "rehydrate": "rehydrate 10-event aggregates",
    "read_all": "read the global log, decoded to typed events",
    "long": "load one 10,000-event aggregate, no snapshot",
    "long_snapshot": "load one 10,000-event aggregate from a snapshot",
    "catchup": "projection catch-up",
}

Key = tuple[str, str, int, str]  # workload, backend, payload, system

ANALYSIS = Path(__file__).resolve().parent / "analysis.md"
"""Why missed targets are missed and what was optimised: added to every results.md."""


def summarize(rows: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """Median, min and max over the repetitions of each (workload, backend, payload, system)."""
    groups: defaultdict[Key, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["workload"], row["backend"], row["payload"], row["system"])].append(row)
    out: dict[Key, dict[str, Any]] = {}
    for key, runs in groups.items():
        values = [r["value"] for r in runs]
        item: dict[str, Any] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "runs": len(values),
            "unit": runs[0]["unit"],
        }
        for extra in ("p50_ms", "p99_ms", "conflicts", "commands", "events"):
            found = [r[extra] for r in runs if extra in r]
            if found:
                item[extra] = statistics.median(found)
        out[key] = item
    return out


def speedup(summary: dict[Key, dict[str, Any]], key: Key, other: str) -> float | None:
    """eventkeep's advantage over ``other`` (>1 is eventkeep faster), for rates and for times."""
    mine = summary.get(key)
    theirs = summary.get((key[0], key[1], key[2], other))
    if not mine or not theirs or not mine["median"] or not theirs["median"]:
        return None
    if mine["unit"] == "ms":
        return float(theirs["median"] / mine["median"])
    return float(mine["median"] / theirs["median"])


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def _cell(item: dict[str, Any] | None) -> str:
    if item is None:
        return "-"
    unit = item["unit"]
    text = _fmt(item["median"], unit)
    if item["runs"] > 1:
        text += f" ({_fmt(item['min'], unit)}-{_fmt(item['max'], unit)})"
    return text


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _workloads(summary: dict[Key, dict[str, Any]], payload: int, prefix: str = "") -> list[str]:
    seen = {k[0] for k in summary if k[2] == payload and k[0].startswith(prefix)}
    order = [*LABELS, *sorted(seen - set(LABELS))]
    return [w for w in order if w in seen]


def suite_table(summary: dict[Key, dict[str, Any]], payload: int) -> list[str]:
    lines = [
        "| workload | backend | unit | eventkeep | eventsourcing | raw floor (equivalent) "
        "| ek / es | ek / raw |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for workload in _workloads(summary, payload):
        if workload.startswith(("writers_", "hot_")):
            continue
        for backend in BACKENDS:
            key = (workload, backend, payload, "eventkeep")
            cells = [summary.get((workload, backend, payload, s)) for s in SYSTEMS]
            if not any(cells):
                continue
            unit = next(c["unit"] for c in cells if c)
            lines.append(
                f"| {LABELS.get(workload, workload)} | {backend} | {unit} | "
                + " | ".join(_cell(c) for c in cells)
                + f" | {_ratio(speedup(summary, key, 'eventsourcing'))}"
                + f" | {_ratio(speedup(summary, key, 'raw'))} |"
            )
    return lines


def min_floor_table(summary: dict[Key, dict[str, Any]]) -> list[str]:
    """The minimal floor's batch-append and command-loop figures, and eventkeep's share of them."""
    lines = [
        "| workload | backend | payload | minimal floor | equivalent floor | eventkeep "
        "| ek / minimal | ek / equivalent |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for workload in ("batch", "command"):
        for backend in BACKENDS:
            for payload in sorted({k[2] for k in summary}):
                minimal = summary.get((workload, backend, payload, MIN_FLOOR))
                if minimal is None:
                    continue
                key = (workload, backend, payload, "eventkeep")
                lines.append(
                    f"| {LABELS[workload]} | {backend} | {_size(payload)} | {_cell(minimal)} "
                    f"| {_cell(summary.get((workload, backend, payload, 'raw')))} "
                    f"| {_cell(summary.get(key))} | {_pct(speedup(summary, key, MIN_FLOOR))} "
                    f"| {_pct(speedup(summary, key, 'raw'))} |"
                )
    return lines


def latency_table(summary: dict[Key, dict[str, Any]], payload: int) -> list[str]:
    lines = [
        "| workload | backend | eventkeep p50 / p99 | eventsourcing p50 / p99 | raw p50 / p99 |",
        "|---|---|---:|---:|---:|",
    ]
    for workload in ("create", "command", "batch", "rehydrate"):
        for backend in BACKENDS:
            cells = [summary.get((workload, backend, payload, s)) for s in SYSTEMS]
            if not any(c and "p50_ms" in c for c in cells):
                continue
            text = [
                f"{c['p50_ms']:.2f} / {c['p99_ms']:.2f}" if c and "p50_ms" in c else "-"
                for c in cells
            ]
            lines.append(f"| {LABELS[workload]} | {backend} | " + " | ".join(text) + " |")
    return lines


def writers_table(summary: dict[Key, dict[str, Any]], payload: int) -> list[str]:
    lines = [
        "| writers | eventkeep events/s | eventsourcing events/s | raw events/s | ek / es "
        "| ek vs ek 1 writer | p50 / p99 ms (ek) | p50 / p99 ms (es) | conflicts (ek / es / raw) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    workloads = sorted(
        {k[0] for k in summary if k[0].startswith(("writers_", "hot_")) and k[2] == payload},
        key=lambda w: (w.startswith("hot"), int(w.split("_")[1])),
    )
    single = summary.get(("writers_1", "postgres", payload, "eventkeep"))
    for workload in workloads:
        cells = [summary.get((workload, "postgres", payload, s)) for s in SYSTEMS]
        ek, es, _raw = cells
        scale = "-"
        if ek and single and single["median"]:
            scale = f"{ek['median'] / single['median']:.2f}x"

        def lat(item: dict[str, Any] | None) -> str:
            return (
                f"{item['p50_ms']:.1f} / {item['p99_ms']:.1f}" if item and "p50_ms" in item else "-"
            )

        conflicts = " / ".join(str(int(c.get("conflicts", 0))) if c else "-" for c in cells)
        n = workload.split("_")[1]
        name = (
            f"{n} on distinct streams"
            if workload.startswith("writers")
            else f"{n} on one hot stream"
        )
        key = (workload, "postgres", payload, "eventkeep")
        lines.append(
            f"| {name} | "
            + " | ".join(_cell(c) for c in cells)
            + f" | {_ratio(speedup(summary, key, 'eventsourcing'))} | {scale} | {lat(ek)} "
            f"| {lat(es)} | {conflicts} |"
        )
    return lines


def targets(summary: dict[Key, dict[str, Any]], payload: int = 256) -> list[dict[str, Any]]:
    """The targets (issue 17's among them), each with what was measured, where the equivalent
    raw floor stands by the same measure in the same run, and whether it is met.

    ``floor``: for a ratio to eventsourcing, the raw floor's own ratio to eventsourcing; for a
    share of the raw floor, 100%; for a time or a rate, the floor's own. ``reachable`` is False
    when the goal lies beyond the floor itself: no implementation storing what the floor stores
    (and eventkeep stores more) could meet it on this machine in this run.
    """
    out: list[dict[str, Any]] = []

    def add(
        name: str,
        measured: float | None,
        goal: float,
        text: str,
        floor: float | None,
        floor_text: str,
        higher: bool = True,
    ) -> None:
        if measured is None:
            out.append({"target": name, "measured": "not measured", "met": None})
            return
        met = measured >= goal if higher else measured <= goal
        reachable = None if floor is None else (floor >= goal if higher else floor <= goal)
        out.append(
            {
                "target": name,
                "measured": text,
                "met": met,
                "value": measured,
                "floor": floor_text if floor is not None else "-",
                "reachable": reachable,
            }
        )

    def ratio(workload: str, backend: str, other: str, system: str = "eventkeep") -> float | None:
        return speedup(summary, (workload, backend, payload, system), other)

    def versus_es(name: str, workload: str, backend: str, goal: float) -> None:
        r = ratio(workload, backend, "eventsourcing")
        f = ratio(workload, backend, "eventsourcing", system="raw")
        add(f"{name} >= {goal:g}x eventsourcing ({backend})", r, goal, _ratio(r), f, _ratio(f))

    def versus_raw(name: str, workload: str, backend: str, goal: float) -> None:
        r = ratio(workload, backend, "raw")
        add(f"{name} >= {goal:.0%} of the raw floor ({backend})", r, goal, _pct(r), 1.0, "100%")

    for backend in ("sqlite", "postgres"):
        versus_es("create + save (one event, repository)", "create", backend, 2)
    versus_raw("create + save (one event, repository)", "create", "sqlite", 0.75)
    versus_raw("create + save (one event, repository)", "create", "postgres", 0.5)
    for backend in ("sqlite", "postgres"):
        versus_es("command loop", "command", backend, 3)
    versus_raw("command loop", "command", "sqlite", 0.75)
    for backend in ("sqlite", "postgres"):
        versus_es("batch append", "batch", backend, 2)
    versus_raw("batch append", "batch", "sqlite", 0.75)
    versus_raw("batch append", "batch", "postgres", 0.6)
    for backend in ("sqlite", "postgres"):
        versus_es("10,000-event aggregate, no snapshot:", "long", backend, 5)
    ms = summary.get(("long", "sqlite", payload, "eventkeep"))
    raw_ms = summary.get(("long", "sqlite", payload, "raw"))
    if ms is not None:
        floor_ms = raw_ms["median"] if raw_ms else None
        add(
            "10,000-event aggregate, no snapshot: <= 30 ms (sqlite)",
            ms["median"],
            30,
            f"{ms['median']:.1f} ms",
            floor_ms,
            f"{floor_ms:.1f} ms (rows only, not decoded)" if floor_ms else "",
            higher=False,
        )
    for backend in ("sqlite", "postgres"):
        versus_es("read the log decoded", "read_all", backend, 2)
        r = ratio("read_all", backend, "raw")
        add(
            f"read the log decoded >= 50% of raw read + JSON decode ({backend})",
            r,
            0.5,
            _pct(r),
            1.0,
            "100%",
        )
    versus_es("one writer process", "writers_1", "postgres", 2)
    versus_raw("one writer process", "writers_1", "postgres", 0.5)
    four = summary.get(("writers_4", "postgres", payload, "eventkeep"))
    one = summary.get(("writers_1", "postgres", payload, "eventkeep"))
    raw_four = summary.get(("writers_4", "postgres", payload, "raw"))
    raw_one = summary.get(("writers_1", "postgres", payload, "raw"))
    r = four["median"] / one["median"] if four and one else None
    f = raw_four["median"] / raw_one["median"] if raw_four and raw_one else None
    add("4 writers >= 1.5x eventkeep's 1 writer (postgres)", r, 1.5, _ratio(r), f, _ratio(f))
    versus_es("4 writers", "writers_4", "postgres", 3)
    versus_raw("4 writers", "writers_4", "postgres", 0.4)
    catch = summary.get(("catchup", "sqlite", payload, "eventkeep"))
    raw_catch = summary.get(("catchup", "sqlite", payload, "raw"))
    rate = catch["median"] if catch else None
    floor_rate = raw_catch["median"] if raw_catch else None
    add(
        "projection catch-up >= 200,000 events/s (sqlite)",
        rate,
        200_000,
        f"{rate or 0:,.0f}/s",
        floor_rate,
        f"{floor_rate or 0:,.0f}/s",
    )
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any], notes: list[str]) -> str:
    summary = summarize(rows)
    payloads = sorted({k[2] for k in summary})
    lines = [
        "# eventkeep benchmark results",
        "",
        f"Run {meta['date']} on {meta['machine']}; {meta['mode']} run, median of "
        f"{meta['repeats']} run(s) with the min-max spread in brackets. "
        "Ratios are eventkeep's speed-up (higher is better: rates divided, times inverted).",
        "",
    ]
    lines += [f"- {note}" for note in notes]
    lines.append("")
    verdicts = targets(summary)
    if verdicts:
        lines += [
            "## Targets (payload 256 B)",
            "",
            "*The floor's own*: where the equivalent raw floor stands by the same measure, in "
            "the same run (its ratio to eventsourcing, its time, its rate). A goal beyond it "
            "is out of reach on this machine for anything that stores what the floor stores.",
            "",
            "| target | measured | the floor's own | met |",
            "|---|---:|---:|---|",
        ]
        for t in verdicts:
            met = {True: "met", False: "**MISSED**", None: "not measured"}[t["met"]]
            if t["met"] is False and t.get("reachable") is False:
                met = "**MISSED** (beyond the floor)"
            lines.append(f"| {t['target']} | {t['measured']} | {t.get('floor', '-')} | {met} |")
        met_count = sum(1 for t in verdicts if t["met"])
        beyond = sum(1 for t in verdicts if t["met"] is False and t.get("reachable") is False)
        lines += [
            "",
            f"{met_count} of {len(verdicts)} met; of the missed, {beyond} lie beyond the "
            "floor's own figure in this run.",
            "",
        ]
    minimal = min_floor_table(summary)
    if len(minimal) > 2:
        lines += [
            "## The minimal floor",
            "",
            "The raw floor columns and the targets use the equivalent floor (`systems/raw.py`: "
            "a row with an event id under a unique index, metadata, timestamp and schema "
            "version, plus a type index). The minimal floor (`systems/raw_min.py`) stores less "
            "than an event store must: stream id, version, type and data, one unique index. "
            "Both in events/s, with eventkeep's share of each:",
            "",
            *minimal,
            "",
        ]
    for payload in payloads:
        lines += [f"## Payload {_size(payload)}", "", *suite_table(summary, payload), ""]
        latency = latency_table(summary, payload)
        if len(latency) > 2:
            lines += [f"Latency per operation (ms), payload {_size(payload)}:", "", *latency, ""]
        writers = writers_table(summary, payload)
        if len(writers) > 2:
            lines += [
                f"### Concurrent writer processes on PostgreSQL, payload {_size(payload)}",
                "",
                *writers,
                "",
            ]
    if ANALYSIS.exists():  # the hand-written findings: profiles, optimisations
        lines += [ANALYSIS.read_text().strip(), ""]
    lines += ["## Environment", "", "```", json.dumps(meta, indent=2), "```", ""]
    return "\n".join(lines)


def _size(payload: int) -> str:
    return f"{payload // 1024} KiB" if payload >= 1024 and payload % 1024 == 0 else f"{payload} B"


def chart(rows: list[dict[str, Any]], path: Path) -> bool:
    """Bar chart of eventkeep's speed-up over eventsourcing and over the raw floor."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    summary = summarize(rows)
    payloads = sorted({k[2] for k in summary})
    fig, axes = plt.subplots(len(payloads), 1, figsize=(12, 4.5 * len(payloads)), squeeze=False)
    for ax, payload in zip(axes[:, 0], payloads, strict=True):
        labels, vs_es, vs_raw = [], [], []
        for workload in _workloads(summary, payload):
            for backend in BACKENDS:
                key = (workload, backend, payload, "eventkeep")
                if key not in summary:
                    continue
                labels.append(f"{workload} {backend}")
                vs_es.append(speedup(summary, key, "eventsourcing") or 0.0)
                vs_raw.append(speedup(summary, key, "raw") or 0.0)
        xs = range(len(labels))
        ax.bar([x - 0.2 for x in xs], vs_es, 0.4, label="eventkeep / eventsourcing")
        ax.bar([x + 0.2 for x in xs], vs_raw, 0.4, label="eventkeep / raw driver floor")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("speed-up (x, higher is better)")
        ax.set_title(f"eventkeep speed-up, payload {_size(payload)}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(rows: list[dict[str, Any]], meta: dict[str, Any], notes: list[str], out: Path) -> str:
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(rows, meta, notes)
    (out / "results.md").write_text(text)
    summary = summarize(rows)
    document = {
        "meta": meta,
        "notes": notes,
        "runs": rows,
        "summary": [
            {"workload": k[0], "backend": k[1], "payload": k[2], "system": k[3], **v}
            for k, v in sorted(summary.items())
        ],
        "targets": targets(summary),
    }
    (out / "results.json").write_text(json.dumps(document, indent=1) + "\n")
    if not chart(rows, out / "chart.png"):
        notes.append("matplotlib is not installed: no chart (pip install -e '.[bench]')")
    return text


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.report [DIR]``: re-render results.md and chart.png from JSON."""
    folder = Path((argv if argv is not None else sys.argv[1:] or [""])[0] or RESULTS)
    document = json.loads((folder / "results.json").read_text())
    write(document["runs"], document["meta"], document["notes"], folder)
    print(f"re-rendered {folder / 'results.md'}")
    return 0


RESULTS = Path(__file__).resolve().parent / "results"

if __name__ == "__main__":
    sys.exit(main())
