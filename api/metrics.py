"""Prometheus metrics, on a registry of this app's own (no process globals).

Per-stream gauges are read from the service at scrape time, so streams that come and go need no
bookkeeping; latencies are histograms observed where they happen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.query_latency = Histogram(
            "vidsight_query_latency_seconds",
            "Latency of queries: search (whole call), ask_first_token, ask (whole answer).",
            ["kind"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.requests = Counter(
            "vidsight_http_requests",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.ws_clients = Gauge("vidsight_ws_clients", "Connected /v1/live clients.", registry=self.registry)
        self.ws_dropped = Counter(
            "vidsight_ws_dropped_messages",
            "Push messages dropped for slow WebSocket clients.",
            ["type"],
            registry=self.registry,
        )
        self.ws_closed_slow = Counter(
            "vidsight_ws_slow_disconnects",
            "WebSocket clients closed for falling too far behind.",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "vidsight_rate_limited_requests",
            "Requests refused by the per-key rate limit.",
            registry=self.registry,
        )
        self.events_stored = Counter(
            "vidsight_events_stored",
            "Events written to the memory bank by this server.",
            ["stream"],
            registry=self.registry,
        )

    def watch(
        self, streams: Callable[[], list[dict[str, Any]]], queues: Callable[[], dict[str, int]]
    ) -> None:
        """Read per-stream health and queue depths from the service on every scrape."""
        self.registry.register(_ServiceCollector(streams, queues))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ServiceCollector(Collector):
    def __init__(
        self, streams: Callable[[], list[dict[str, Any]]], queues: Callable[[], dict[str, int]]
    ) -> None:
        self.streams = streams
        self.queues = queues

    def describe(self) -> list[Any]:
        return []  # dynamic: described at collect time

    def collect(self) -> Iterator[Any]:
        gauges = {
            "fps": GaugeMetricFamily(
                "vidsight_stream_fps", "Frames per second processed lately.", labels=["stream"]
            ),
            "lag_s": GaugeMetricFamily(
                "vidsight_stream_lag_seconds",
                "Newest frame's arrival behind real time (reader).",
                labels=["stream"],
            ),
            "processing_lag_s": GaugeMetricFamily(
                "vidsight_stream_processing_lag_seconds",
                "Real time minus the capture time of the last processed frame.",
                labels=["stream"],
            ),
            "queue_frames": GaugeMetricFamily(
                "vidsight_stream_queue_frames",
                "Frames waiting between reader and pipeline.",
                labels=["stream"],
            ),
        }
        counters = {
            "reconnects": CounterMetricFamily("vidsight_stream_reconnects", "Reconnects.", labels=["stream"]),
            "dropped": CounterMetricFamily(
                "vidsight_stream_dropped_frames", "Frames dropped by the live queue.", labels=["stream"]
            ),
            "frames": CounterMetricFamily("vidsight_stream_frames", "Frames processed.", labels=["stream"]),
            "tokens_in": CounterMetricFamily(
                "vidsight_stream_tokens_in", "Vision tokens the encoder produced.", labels=["stream"]
            ),
            "tokens_kept": CounterMetricFamily(
                "vidsight_stream_tokens_kept", "Vision tokens kept after compression.", labels=["stream"]
            ),
            "errors": CounterMetricFamily(
                "vidsight_stream_errors", "Failed processing batches.", labels=["stream"]
            ),
        }
        for snap in self.streams():
            sid = str(snap["stream_id"])
            families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {**gauges, **counters}
            for name, family in families.items():
                value = snap.get(name)
                if value is not None:
                    family.add_metric([sid], float(value))
        yield from gauges.values()
        yield from counters.values()
        depth = GaugeMetricFamily(
            "vidsight_queue_depth", "Items waiting in the service's queues.", labels=["queue"]
        )
        for name, value in self.queues().items():
            depth.add_metric([name], float(value))
        yield depth
