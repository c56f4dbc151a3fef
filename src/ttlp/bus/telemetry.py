"""Prometheus figures of this process's consume loops (DESIGN §9): entries each role handled
and dead-lettered, and how long its batches take.

They are read from the running ``Consumer`` objects at scrape time (no timers, no second set of
counters). The api role serves them on ``/metrics`` with its own figures; a process without the
api role serves them on ``METRICS_PORT`` when that is set, so split deployments see every role.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from loguru import logger
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ttlp.bus.consumer import BATCH_BUCKETS_S, running_consumers
from ttlp.errors import ConfigError

LABELS = ["role", "stream", "group"]


@dataclass
class _Totals:
    processed: int = 0
    dead_lettered: int = 0
    seconds: float = 0.0
    counts: list[int] = field(default_factory=lambda: [0] * (len(BATCH_BUCKETS_S) + 1))


class ConsumerCollector(Collector):
    """``ttlp_events_processed_total{role,stream,group,outcome}`` and
    ``ttlp_batch_seconds{role,stream,group}`` over the consumers of this process (the replicas
    of one group in one process are summed)."""

    def collect(self) -> Iterator[Metric]:
        totals: dict[tuple[str, str, str], _Totals] = {}
        for consumer in running_consumers():
            stats = consumer.stats
            t = totals.setdefault((consumer.stage, consumer.stream, consumer.group), _Totals())
            t.processed += stats.processed
            t.dead_lettered += stats.dead_lettered
            t.seconds += stats.batch_seconds
            t.counts = [a + b for a, b in zip(t.counts, stats.batch_counts, strict=True)]
        events = CounterMetricFamily(
            "ttlp_events_processed",
            "Bus entries a role's consumers handled (processed) or gave up on (dead_lettered)",
            labels=[*LABELS, "outcome"],
        )
        batches = HistogramMetricFamily(
            "ttlp_batch_seconds",
            "Time to handle and acknowledge one batch, per role and consumer group",
            labels=LABELS,
        )
        for key, t in sorted(totals.items()):
            events.add_metric([*key, "processed"], t.processed)
            events.add_metric([*key, "dead_lettered"], t.dead_lettered)
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, BATCH_BUCKETS_S), "+Inf"), t.counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            batches.add_metric(list(key), buckets, t.seconds)
        yield events
        yield batches


def serve_metrics(host: str, port: int) -> WSGIServer:
    """``GET /metrics`` with this process's consumer figures, served from a daemon thread (for
    a process without the api role); ``shutdown()`` it at exit."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ConsumerCollector())
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigError(f"METRICS_PORT {port}: cannot listen on {host}:{port}: {exc}") from None
    logger.bind(role="runtime").info("metrics served", host=host, port=server.server_port)
    return server
