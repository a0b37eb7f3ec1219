"""The server's Prometheus metrics (``GET /metrics``), kept by ``prometheus_client``.

Every response is counted by path and status code, 401/413/422 included, and timed into a
histogram, by a plain ASGI middleware that sits outside the request guard. The predicting side
counts inputs and micro-batches and records batch sizes. Each app has a registry of its own, so
two servers in one process (tests) never share counts.
"""
from __future__ import annotations

import time
from typing import Any

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServingMetrics:
    """The counters, histograms and gauges of one app, and their text exposition."""

    def __init__(self, model_info: dict[str, str]):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("fmkit_requests", "HTTP requests answered, by path and status code",
                                ["path", "status"], registry=r)
        self.latency = Histogram("fmkit_request_duration_seconds", "Time from request to the end of the answer",
                                 ["path"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("fmkit_requests_in_flight", "Requests being answered now", registry=r)
        self.items = Counter("fmkit_items", "Inputs predicted", registry=r)
        self.batches = Counter("fmkit_batches", "Micro-batches run by the model", registry=r)
        self.batch_size = Histogram("fmkit_batch_size", "Inputs per micro-batch", buckets=BATCH_BUCKETS, registry=r)
        Info("fmkit_model", "The served export", registry=r).info(model_info)

    def observe_batch(self, size: int) -> None:
        self.batches.inc()
        self.items.inc(size)
        self.batch_size.observe(size)

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP response; known paths keep their name, a templated route's requests
    count under its template (``/v2/models/{model}/infer``), others as ``other`` (so a scan of random
    URLs cannot grow the label set without bound)."""

    def __init__(self, app, metrics: ServingMetrics, paths: set[str]):
        self.app, self.metrics, self.paths = app, metrics, paths

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = {"code": 500}

        async def recording_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        t0 = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.in_flight.dec()
            # a templated route (``/v2/models/{model}/infer``) counts under its template, set by the router
            template = getattr(scope.get("route"), "path", None)
            path = scope["path"] if scope["path"] in self.paths else template if template in self.paths else "other"
            self.metrics.requests.labels(path, str(status["code"])).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - t0)
