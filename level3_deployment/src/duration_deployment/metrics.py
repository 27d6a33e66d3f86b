"""Prometheus metrics of the router: level 1's HTTP metrics plus one set per variant.

Added names (prefix ``duration_router_``):

- ``predictions_total{variant, model_version, shadow}``: rides predicted.
- ``prediction_errors_total{variant, model_version}``: rides a variant failed on (the champion
  answered them instead when it could).
- ``prediction_latency_seconds{variant}``: time to predict, histogram.
- ``predicted_trip_duration_seconds{variant}``: predicted durations, seconds, histogram.
- ``traffic_weight{variant, model_version}``: share of live traffic (0 for a shadow).
- ``guardrail_rollbacks_total{variant, reason}``: automatic rollbacks (``error_rate``, ``p99``).
- ``drift_psi{variant, feature}`` and ``unseen_pair_share{variant}``: the last drift report.
- ``log_rows_pending``, ``log_rows_written_total``, ``log_rows_dropped_total``: the log writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from duration_service.metrics import DURATION_BUCKETS, LATENCY_BUCKETS, ServiceMetrics

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from duration_deployment.prediction_log import PredictionLog
    from duration_deployment.routing import RoutingTable


class RouterMetrics(ServiceMetrics):
    """Level 1's registry and HTTP metrics, with the per-variant series of the router."""

    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.variant_predictions = Counter(
            "duration_router_predictions_total",
            "Rides predicted, by variant, model version and shadow.",
            ["variant", "model_version", "shadow"],
            registry=r,
        )
        self.variant_errors = Counter(
            "duration_router_prediction_errors_total",
            "Rides a variant failed to predict.",
            ["variant", "model_version"],
            registry=r,
        )
        self.variant_latency = Histogram(
            "duration_router_prediction_latency_seconds",
            "Time a variant took to predict a ride (its batch), seconds.",
            ["variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.variant_duration = Histogram(
            "duration_router_predicted_trip_duration_seconds",
            "Predicted trip durations by variant, seconds (the API answers minutes).",
            ["variant"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.weights = Gauge(
            "duration_router_traffic_weight",
            "Share of live traffic routed to each variant (0 for a shadow).",
            ["variant", "model_version"],
            registry=r,
        )
        self.guardrail_rollbacks = Counter(
            "duration_router_guardrail_rollbacks_total",
            "Variants rolled back by a guardrail, by reason.",
            ["variant", "reason"],
            registry=r,
        )
        self.drift_psi = Gauge(
            "duration_router_drift_psi",
            "Population stability index of a feature against the training profile.",
            ["variant", "feature"],
            registry=r,
        )
        self.unseen_pairs = Gauge(
            "duration_router_unseen_pair_share",
            "Share of recent rides whose pickup/dropoff pair the model never saw in training.",
            ["variant"],
            registry=r,
        )
        self._log: PredictionLog | None = None
        r.register(_LogCollector(self))

    def attach_log(self, log: PredictionLog) -> None:
        """Report the writer's queue and counts from ``log``."""
        self._log = log

    def observe_variant(
        self,
        variant: str,
        model_version: str,
        minutes: Sequence[float | None],
        latency_ms: float,
        *,
        shadow: bool,
    ) -> None:
        """Count what ``variant`` predicted for one call: durations (minutes; ``None`` for a
        ride it failed on) and the call's latency (milliseconds)."""
        ok = [m for m in minutes if m is not None]
        failed = len(minutes) - len(ok)
        if ok:
            self.variant_predictions.labels(variant, model_version, str(shadow).lower()).inc(
                len(ok)
            )
            histogram = self.variant_duration.labels(variant)
            for value in ok:
                histogram.observe(value * 60.0)
        if failed:
            self.variant_errors.labels(variant, model_version).inc(failed)
        self.variant_latency.labels(variant).observe(latency_ms / 1000)

    def show_table(self, table: RoutingTable) -> None:
        """Set ``traffic_weight`` to exactly the variants of ``table``."""
        self.weights.clear()
        for variant in table.variants:
            self.weights.labels(variant.name, variant.model.version).set(variant.weight)

    def show_drift(self, variant: str, report: Mapping[str, Any]) -> None:
        """Set the drift gauges of ``variant`` from a drift report's ``to_dict()``: its
        ``features`` (``{name: {"psi": float, ...}}``) and ``unseen_pair_share`` (0-1)."""
        features: Mapping[str, Mapping[str, Any]] = report.get("features", {})
        for feature, values in features.items():
            self.drift_psi.labels(variant, feature).set(float(values["psi"]))
        self.unseen_pairs.labels(variant).set(float(report.get("unseen_pair_share", 0.0)))


class _LogCollector:
    """Reads the prediction log's counters at scrape time."""

    def __init__(self, metrics: RouterMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        log = self.metrics._log
        pending, written, dropped = (
            (log.pending, log.written, log.dropped) if log is not None else (0, 0, 0)
        )
        yield GaugeMetricFamily(
            "duration_router_log_rows_pending", "Prediction-log rows not yet written.", pending
        )
        yield CounterMetricFamily(
            "duration_router_log_rows_written", "Prediction-log rows written.", written
        )
        yield CounterMetricFamily(
            "duration_router_log_rows_dropped",
            "Prediction-log rows dropped because the database was down too long.",
            dropped,
        )

    def describe(self) -> list[object]:
        return []
