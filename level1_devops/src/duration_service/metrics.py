"""Prometheus metrics of the service, and the ASGI middleware that records them.

Metric names (all prefixed ``duration_``):

- ``duration_http_requests_total{route, method, status}``: requests answered.
- ``duration_http_request_duration_seconds{route}``: latency histogram, seconds.
- ``duration_predicted_trip_duration_seconds``: histogram of predicted trip durations,
  seconds (Prometheus names carry base units; the API answers minutes).
- ``duration_rides_predicted_total{route}``: rides predicted (a batch counts each ride).
- ``duration_errors_total{kind}``: error answers by kind, each counted once: ``validation``
  (422), ``bad_json`` and ``bad_request`` (400), ``payload_too_large`` (413),
  ``unsupported_media_type`` (415), ``not_found`` (404), ``method_not_allowed`` (405),
  ``model_unavailable`` (503), ``internal`` (500), and ``client_disconnected`` (the client
  left before the answer was sent).
- ``duration_model_info{version, model, sklearn}``: 1 for the model being served.

With several uvicorn workers, ``duration-serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` and
``/metrics`` aggregates every worker (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

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
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Predicted trip durations, seconds: 1, 2, 5, 10, 15, 20, 30, 45, 60, 90 and 120 minutes.
DURATION_BUCKETS = tuple(60.0 * m for m in (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120))
#: Error kind of an answer whose handler named none, by status code.
STATUS_ERROR_KINDS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation",
    503: "model_unavailable",
}
#: Where a handler records the kind of error it answered (``request.state.error_kind``).
ERROR_KIND = "error_kind"


def tag_error(request: Request, kind: str) -> None:
    """Name the kind of error being answered; the middleware counts it once."""
    request.state.error_kind = kind


class ServiceMetrics:
    """The service's metrics, in a registry of their own (one per app, so tests don't clash)."""

    def __init__(self) -> None:
        # No *_created series: they double the output for nothing. (prometheus-client leaves
        # these two functions unannotated.)
        disable_created_metrics()  # type: ignore[no-untyped-call]  # see above
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
        self.predicted_duration = Histogram(
            "duration_predicted_trip_duration_seconds",
            "Predicted trip durations, seconds (the API answers them in minutes).",
            buckets=DURATION_BUCKETS,
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
            self.predicted_duration.observe(value * 60.0)
            count += 1
        self.rides.labels(route).inc(count)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type; all workers' in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # as above
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: counts every request and times it, by route template.

    The route label is the matched path template (``/predict``), never the raw path, so
    probing random URLs cannot blow up the number of time series: those count as
    ``unmatched``. Every answer of status 400 or more also counts once in ``errors`` under the
    kind its handler tagged (:func:`tag_error`), else the kind of its status code.
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
        started = False

        async def send_with_status(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        kind = None
        try:
            await self.app(scope, receive, send_with_status)
        except (ClientDisconnect, OSError, RuntimeError):
            if not started:
                raise
            # The answer was on its way when the connection closed (the client left): there
            # is no one to tell and nothing to fix, so no traceback and no "internal" error.
            kind = "client_disconnected"
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None)
            if template is None:  # the docs pages are no APIRoute; an unknown path is a 404
                template = scope["path"] if status < 400 else "unmatched"
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - start)
            kind = kind or scope.get("state", {}).get(ERROR_KIND)
            if kind is None and status >= 400:
                kind = STATUS_ERROR_KINDS.get(status, "internal" if status >= 500 else "other")
            if kind is not None:
                self.metrics.errors.labels(kind).inc()


class BodySizeLimitMiddleware:
    """Answers 413 (JSON) to a request whose body exceeds ``max_bytes``, before it is parsed.

    Checks the ``Content-Length`` header and, for chunked uploads, counts the bytes as they
    arrive, so a client cannot make the service buffer and validate an unbounded body.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        error_body: Callable[[str, int, str], dict[str, Any] | None] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # The body a path's protocol expects (None: the services' own ``{"detail", "errors"}``).
        self.error_body = error_body

    def message(self) -> str:
        """The 413 detail."""
        return f"request body is larger than the limit of {self.max_bytes:,} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                content = self.error_body and self.error_body(scope["path"], 413, self.message())
                body = json.dumps(content or {"detail": self.message(), "errors": []}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI lets an HTTPException from body reading through to its handler.
                    raise HTTPException(413, detail=self.message())
            return message

        await self.app(scope, limited_receive, send)
