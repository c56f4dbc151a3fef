"""Prometheus metrics of the api role (DESIGN §9): requests, feed clients, bus lag, DLQ size.

One ``CollectorRegistry`` per app (not the global one), so several apps in one test process
do not collide. Bus figures are read when ``/metrics`` is scraped, not on a timer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ttlp.bus.telemetry import ConsumerCollector
from ttlp.forward.store import ForwardStore

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ttlp.api.feed import FeedStats
    from ttlp.bus.base import Bus
    from ttlp.bus.keys import Keys


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(ConsumerCollector())  # the roles running in this process
        self.requests = Counter(
            "ttlp_api_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ttlp_api_request_seconds",
            "HTTP request duration (to the response start)",
            ["route"],
            registry=self.registry,
        )
        self.feed_clients = Gauge(
            "ttlp_api_feed_clients", "Connected SSE/WebSocket feed clients", registry=self.registry
        )
        self.feed_published = Gauge(
            "ttlp_api_feed_events", "Events the feed tail has published", registry=self.registry
        )
        self.feed_dropped = Gauge(
            "ttlp_api_feed_dropped_clients",
            "Feed clients dropped for reading too slowly",
            registry=self.registry,
        )
        self.stream_length = Gauge(
            "ttlp_stream_length", "Entries in a bus stream", ["stream"], registry=self.registry
        )
        self.group_lag = Gauge(
            "ttlp_group_lag",
            "Entries not yet delivered to a consumer group",
            ["stream", "group"],
            registry=self.registry,
        )
        self.group_pending = Gauge(
            "ttlp_group_pending",
            "Entries delivered but not acknowledged",
            ["stream", "group"],
            registry=self.registry,
        )
        self.bus_up = Gauge(
            "ttlp_bus_up", "1 when the last scrape could read the bus", registry=self.registry
        )
        self.dlq_size = Gauge(
            "ttlp_dlq_size", "Entries in the dead-letter stream", registry=self.registry
        )
        self.forward = Gauge(
            "ttlp_forward_deliveries",
            "Forwarder deliveries per target: delivered, retried (failed attempts that were "
            "tried again), dead_lettered, pending; read from forward_deliveries at each scrape",
            ["target", "outcome"],
            registry=self.registry,
        )

    async def count_response(self, message: Message, scope: Scope) -> None:
        """``before_send``: count every HTTP response, errors raised by middleware included.
        Async on purpose: Litestar runs a sync hook in a thread pool, for every message."""
        if message["type"] == "http.response.start":
            route = scope.get("path_template") or "unmatched"
            method = scope.get("method", "GET")
            self.requests.labels(route, method, str(message["status"])).inc()

    async def render(self, bus: Bus, keys: Keys, engine: AsyncEngine, feed: FeedStats) -> bytes:
        """The metrics text; with the bus away, its figures keep their last values and
        ``ttlp_bus_up`` says 0 (a scrape must not fail because of what it reports on)."""
        try:
            for stream in keys.streams:
                self.stream_length.labels(stream).set(await bus.length(stream))
                for group in await bus.groups(stream):
                    self.group_lag.labels(stream, group.name).set(group.lag or 0)
                    self.group_pending.labels(stream, group.name).set(group.pending)
            self.dlq_size.set(await bus.length(keys.dlq))
            self.bus_up.set(1)
        except Exception:  # any bus failure: reported as a figure
            self.bus_up.set(0)
        await self._forward_counts(engine)
        self.feed_clients.set(feed.clients)
        self.feed_published.set(feed.published)
        self.feed_dropped.set(feed.dropped_clients)
        return generate_latest(self.registry)

    async def _forward_counts(self, engine: AsyncEngine) -> None:
        """Per-target forward counts: the forward role may run in another process, so they
        come from its table (one GROUP BY), not from in-process counters."""
        try:
            counts = await ForwardStore(engine).counts()
        except Exception:  # a scrape must not fail because of what it reports on
            return
        self.forward.clear()  # deleted targets disappear
        for target_id, c in counts.items():
            target = str(target_id)
            self.forward.labels(target, "delivered").set(c.delivered)
            self.forward.labels(target, "retried").set(c.retried)
            self.forward.labels(target, "dead_lettered").set(c.dead)
            self.forward.labels(target, "pending").set(c.pending)


def metrics_middleware(metrics: ApiMetrics) -> Any:
    """Time HTTP requests by route template (not raw path: ids would explode the labels)."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":  # type: ignore[comparison-overlap]
                await app(scope, receive, send)
                return
            start = time.perf_counter()

            async def timing_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    route = scope.get("path_template") or "unmatched"
                    metrics.latency.labels(route).observe(time.perf_counter() - start)
                await send(message)

            await app(scope, receive, timing_send)

        return middleware

    return factory
