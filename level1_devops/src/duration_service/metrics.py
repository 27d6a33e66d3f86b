"""Prometheus metrics of the service, and the ASGI middleware that records them.

Metric names (all prefixed ``duration_``):

- ``duration_http_requests_total{route, method, status}``: requests answered.
- ``duration_http_request_duration_seconds{route}``: latency histogram, seconds.
- ``duration_predicted_minutes``: histogram of predicted trip durations, minutes.
- ``duration_rides_predicted_total{route}``: rides predicted (a batch counts each ride).
- ``duration_errors_total{kind}``: error answers by kind (``validation``, ``bad_json``,
  ``model_unavailable``, ``payload_too_large``, ``batch_too_large``, ``not_found``,
  ``method_not_allowed``, ``internal``).
- ``duration_model_info{version, model, sklearn}``: 1 for the model being served.

With several uvicorn workers, ``duration-serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` and
``/metrics`` aggregates every worker (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MINUTE_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120)
STATUS_ERROR_KINDS = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


class ServiceMetrics:
    """The service's metrics, in a registry of their own (one per app, so tests don't clash)."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: they double the output for nothing
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "duration_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "duration_http_request_duration_seconds",
            "Time from request received to response sent, seconds.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predicted_minutes = Histogram(
            "duration_predicted_minutes",
            "Predicted trip durations, minutes.",
            buckets=MINUTE_BUCKETS,
            registry=self.registry,
        )
        self.rides = Counter(
            "duration_rides_predicted_total",
            "Rides predicted, by route (a batch counts each of its rides).",
            ["route"],
            registry=self.registry,
        )
        self.errors = Counter(
            "duration_errors_total",
            "Error answers, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "duration_model_info",
            "The model being served (value 1), labelled with its version.",
            ["version", "model", "sklearn"],
            registry=self.registry,
            multiprocess_mode="max",
        )

    def observe_predictions(self, route: str, minutes: Iterable[float]) -> None:
        """Count rides and record their predicted durations."""
        count = 0
        for value in minutes:
            self.predicted_minutes.observe(value)
            count += 1
        self.rides.labels(route).inc(count)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type; all workers' in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: counts every request and times it, by route template.

    The route label is the matched path template (``/predict``), never the raw path, so
    probing random URLs cannot blow up the number of time series: those count as
    ``unmatched``.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - start)
            if status in STATUS_ERROR_KINDS:
                self.metrics.errors.labels(STATUS_ERROR_KINDS[status]).inc()
