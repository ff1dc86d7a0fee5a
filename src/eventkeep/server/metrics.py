"""Prometheus metrics in the text exposition format, written by hand.

Four series and one histogram do not justify a dependency (``prometheus_client`` brings a
registry, a multiprocess mode and its own process collectors, none of which a server of one
process per core needs); the format is small and stable:
https://prometheus.io/docs/instrumenting/exposition_formats/
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

__all__ = ["BUCKETS", "Metrics"]

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds of the append latency histogram, in seconds."""


class Metrics:
    """The server's counters; one object per application (the event loop is its only writer)."""

    def __init__(self) -> None:
        self.events_appended = 0
        self.appends = 0
        self.requests: dict[tuple[str, int], int] = {}
        self._bucket_counts = [0] * (len(BUCKETS) + 1)
        self._latency_sum = 0.0

    def observe_append(self, seconds: float, events: int) -> None:
        self.appends += 1
        self.events_appended += events
        self._latency_sum += seconds
        self._bucket_counts[bisect.bisect_left(BUCKETS, seconds)] += 1

    def count_request(self, method: str, status: int) -> None:
        key = (method, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def render(
        self, *, subscribers: int, dropped: int, lags: Iterable[tuple[str, int, float]]
    ) -> str:
        lines = [
            "# HELP eventkeep_append_duration_seconds Time to append one request's events.",
            "# TYPE eventkeep_append_duration_seconds histogram",
        ]
        total = 0
        for bound, count in zip((*BUCKETS, float("inf")), self._bucket_counts, strict=True):
            total += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'eventkeep_append_duration_seconds_bucket{{le="{le}"}} {total}')
        lines += [
            f"eventkeep_append_duration_seconds_sum {self._latency_sum!r}",
            f"eventkeep_append_duration_seconds_count {self.appends}",
            "# HELP eventkeep_events_appended_total Events appended through this server.",
            "# TYPE eventkeep_events_appended_total counter",
            f"eventkeep_events_appended_total {self.events_appended}",
            "# HELP eventkeep_http_requests_total HTTP requests answered, by method and status.",
            "# TYPE eventkeep_http_requests_total counter",
        ]
        for (method, status), count in sorted(self.requests.items()):
            lines.append(
                f'eventkeep_http_requests_total{{method="{method}",status="{status}"}} {count}'
            )
        lines += [
            "# HELP eventkeep_live_subscribers Live (SSE) subscribers connected now.",
            "# TYPE eventkeep_live_subscribers gauge",
            f"eventkeep_live_subscribers {subscribers}",
            "# HELP eventkeep_live_dropped_total Live subscribers dropped for falling behind.",
            "# TYPE eventkeep_live_dropped_total counter",
            f"eventkeep_live_dropped_total {dropped}",
            "# HELP eventkeep_projection_lag_events Events in the log after a projection's "
            "checkpoint.",
            "# TYPE eventkeep_projection_lag_events gauge",
        ]
        lag_list = list(lags)
        for name, events, _ in lag_list:
            lines.append(f'eventkeep_projection_lag_events{{projection="{_label(name)}"}} {events}')
        lines += [
            "# HELP eventkeep_projection_lag_seconds Age of the oldest event a projection has "
            "not handled.",
            "# TYPE eventkeep_projection_lag_seconds gauge",
        ]
        for name, _, seconds in lag_list:
            lines.append(
                f'eventkeep_projection_lag_seconds{{projection="{_label(name)}"}} {seconds!r}'
            )
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
