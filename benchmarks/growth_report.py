"""The growth benchmark's report: ``growth.md`` from the results of ``benchmarks/growth.py``."""

from __future__ import annotations

from typing import Any

from benchmarks.growth_stores import BLOCK, PLAN_SAMPLES


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Growth: eventkeep beside the raw floor as the log grows",
        "",
        f"On {results['machine']}: `python -m benchmarks.growth` (see its docstring and "
        "benchmarks/README.md). The events: streams of 10 events (interleaved: a stream's "
        "events are appended one per round, 1,000 streams per round), 1 stream in 1,000 of "
        "500; data 200-400 bytes of JSON, metadata about 90 bytes, 1 event in 5 tagged.",
        "Latencies in microseconds, operations interleaved in rotating blocks of "
        f"{BLOCK} between the subjects.",
        "",
    ]
    for name, backend in results["backends"].items():
        sizes = backend["sizes"]
        lines += [
            f"## {name}",
            "",
            f"Run of {backend['started']}; load average {backend['load_start']} at the start, "
            f"{backend['load_end']} at the end. Before measuring at each size: "
            f"{backend['settle']}.",
            "",
        ]
        if "not_reached" in backend:
            lines += [
                f"**{backend['not_reached']:,} events not reached**: the fill budget "
                f"({backend['fill_budget_s']:.0f} s of bulk appends) ran out at "
                f"{sizes[-1]['events']:,} events; nothing is extrapolated.",
                "",
            ]
        lines += [
            "| events | load | append p50 ek / raw | append p99 ek / raw | read p50 ek / raw "
            "| read p99 ek / raw | growth: append p50 ek / raw | append p99 ek / raw "
            "| read p50 ek / raw | read p99 ek / raw | bytes/event ek / raw (ratio) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in sizes:
            a, r, b = s["append"], s["read"], s["bytes_per_event"]

            def grown(m: dict[str, Any], q: str) -> str:
                ref = m["ref"]
                return (
                    f"{_ratio(m['eventkeep'][q], ref['eventkeep'][q])} / "
                    f"{_ratio(m['raw'][q], ref['raw'][q])}"
                )

            lines.append(
                f"| {s['events']:,} | {s['load_before']}-{s['load_after']} "
                f"| {a['eventkeep']['p50_us']:,.0f} / {a['raw']['p50_us']:,.0f} "
                f"| {a['eventkeep']['p99_us']:,.0f} / {a['raw']['p99_us']:,.0f} "
                f"| {r['eventkeep']['p50_us']:,.0f} / {r['raw']['p50_us']:,.0f} "
                f"| {r['eventkeep']['p99_us']:,.0f} / {r['raw']['p99_us']:,.0f} "
                f"| {grown(a, 'p50_us')} | {grown(a, 'p99_us')} "
                f"| {grown(r, 'p50_us')} | {grown(r, 'p99_us')} "
                f"| {b['eventkeep']:,.0f} / {b['raw']:,.0f} ({b['ratio']:.2f}x) |"
            )
        lines += [
            "",
            "Growth = the figure at this size / the same figure of a second pair (eventkeep and "
            f"floor) kept at {sizes[0]['append']['ref']['events']:,} events, measured in the same "
            "rotating blocks (so the machine's load hits both alike; the first row shows the "
            "noise between two equal stores). Target: at most 1.20.",
            "",
        ]
        for s in sizes:
            if "column_bytes" in s:
                cb = s["column_bytes"]
                lines += [
                    f"At {s['events']:,} events an eventkeep row averages {cb['row']:,.0f} bytes: "
                    f"`data_bytes` {cb['data_bytes']:,.0f}, "
                    + (
                        f"generated `data` jsonb {cb['data']:,.0f}, "
                        if "data" in cb  # runs before the jsonb copies became a view
                        else ""
                    )
                    + f"`metadata_bytes` {cb['metadata_bytes']:,.0f}, `hash` {cb['hash']:,.0f}, "
                    f"`tags` {cb['tags']:,.0f} (`pg_column_size`, a 1% sample).",
                    "",
                ]
        served = [s for s in sizes if "read_server" in s]
        if served:
            lines += [
                "The stream read on the server (`EXPLAIN (ANALYZE, BUFFERS)` of "
                f"{PLAN_SAMPLES} random 10-event streams per subject, alternating; median "
                "execution time, mean shared buffers hit / read):",
                "",
                "| events | eventkeep | floor | eventkeep, small pair | floor, small pair |",
                "|---:|---:|---:|---:|---:|",
            ]
            for s in served:
                cells = [
                    f"{v['exec_us']:,.0f} µs, {v['hit']:.1f} / {v['read']:.1f}"
                    for v in (s["read_server"][n] for n in ("ek", "raw", "ref-ek", "ref-raw"))
                ]
                lines.append(f"| {s['events']:,} | " + " | ".join(cells) + " |")
            lines.append("")
        c = backend["catch_up"]
        lines += [
            "",
            f"Catch-up of the whole log at {c['eventkeep']['events']:,} events (data and "
            f"metadata decoded; load {c['load_before']}-{c['load_after']}): eventkeep "
            f"{c['eventkeep']['events_per_s']:,} events/s, raw floor "
            f"{c['raw']['events_per_s']:,} events/s "
            f"({_ratio(c['eventkeep']['events_per_s'], c['raw']['events_per_s'])}).",
            "",
            "Bulk fill (untimed; eventkeep `append_many`, 1,000 streams per call, one event "
            "of each 10-event stream per call; the floor one `COPY` (PostgreSQL) or "
            "`executemany` (SQLite) per 1,000 streams): "
            + "; ".join(
                f"to {s['events']:,}: eventkeep {s['fill']['eventkeep_events_per_s']:,}/s, "
                f"floor {s['fill']['raw_events_per_s']:,}/s"
                for s in sizes
            )
            + ".",
            "",
        ]
        for s in sizes:
            if "explain" in s:
                lines += [
                    f"<details><summary>EXPLAIN (ANALYZE, BUFFERS) of a 10-event stream "
                    f"read at {s['events']:,} events</summary>",
                    "",
                ]
                for who, plan in s["explain"].items():
                    lines += [f"{who}:", "", "```", plan, "```", ""]
                lines += ["</details>", ""]
    return "\n".join(lines)
