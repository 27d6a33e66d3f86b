"""Prometheus metrics of the router: level 1's HTTP metrics plus one set per variant.

Added names (prefix ``duration_router_``):

- ``predictions_total{variant, model_version, shadow}``: rides predicted.
- ``prediction_errors_total{variant, model_version}``: rides a variant failed on (the champion
  answered them instead when it could).
- ``prediction_latency_seconds{variant}``: time to predict, histogram.
- ``predicted_trip_duration_seconds{variant}``: predicted durations, seconds, histogram.
- ``traffic_weight{variant, model_version}``: share of live traffic (0 for a shadow).
- ``guardrail_rollbacks_total{variant, reason}``: automatic rollbacks (``error_rate``, ``p99``).
- ``drift_psi{variant, feature}``, ``unseen_pair_share{variant}`` and
  ``drift_detected{variant}`` (1 or 0, :func:`duration_core.drift_report`'s rule): the last
  drift report, for the deployed variants whose window had figures.
- ``ab_verdict{challenger, verdict}`` (1 for the current verdict, 0 for the two others),
  ``ab_p_value{challenger}``, ``ab_labelled_rides{challenger, variant}`` (champion and
  challenger sides) and ``ab_more_labelled_needed{challenger}``: the last scheduled A/B report
  of each deployed non-champion variant (a figure the report lacks has no series).
- ``monitor_runs_total{outcome}`` (``ok``, ``error``), ``monitor_last_success_timestamp_seconds``
  (0 before the first), ``monitor_last_run_duration_seconds``, ``monitor_interval_seconds``
  (0: no schedule): the scheduled monitor (``monitor_loop.py``).
- ``feedback_rides_total`` (rides whose actual duration ``POST /feedback`` stored) and
  ``feedback_last_received_timestamp_seconds`` (the newest one in the log; 0 while none).
- ``log_rows_pending``, ``log_rows_written_total``, ``log_rows_dropped_total``: the log writer.

Series of a variant's errors, its rollbacks and its predictions start at 0 when it is deployed
(:meth:`RouterMetrics.show_table`), so ``increase()`` sees its first ones.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from duration_deployment.ab_results import ABReport, Verdict
from duration_deployment.routing import CHAMPION
from duration_service.metrics import DURATION_BUCKETS, LATENCY_BUCKETS, ServiceMetrics

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from duration_deployment.prediction_log import PredictionLog
    from duration_deployment.routing import RoutingTable

#: The values of ``duration_router_ab_verdict``'s ``verdict`` label.
VERDICTS = tuple(str(v) for v in Verdict)
#: The guardrails' reasons (``duration_router_guardrail_rollbacks_total``'s ``reason``).
ROLLBACK_REASONS = ("error_rate", "p99")


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
        self.drift_detected = Gauge(
            "duration_router_drift_detected",
            "1 when the last drift report found drift (a significant PSI or too many unseen "
            "pick-up/drop-off pairs, duration_core's rule), else 0.",
            ["variant"],
            registry=r,
        )
        self._init_monitor_metrics()
        self._log: PredictionLog | None = None
        r.register(_LogCollector(self))

    def _init_monitor_metrics(self) -> None:
        """The A/B figures, the scheduled monitor's own series and the feedback's."""
        r = self.registry
        self.ab_verdict = Gauge(
            "duration_router_ab_verdict",
            "1 for the A/B test's current verdict on a challenger, 0 for the two others.",
            ["challenger", "verdict"],
            registry=r,
        )
        self.ab_p_value = Gauge(
            "duration_router_ab_p_value",
            "p-value of the A/B test (the always-valid one by default) on a challenger.",
            ["challenger"],
            registry=r,
        )
        self.ab_labelled = Gauge(
            "duration_router_ab_labelled_rides",
            "Labelled rides in the A/B experiment, per side (variant: champion or challenger).",
            ["challenger", "variant"],
            registry=r,
        )
        self.ab_more_needed = Gauge(
            "duration_router_ab_more_labelled_needed",
            "Labelled challenger rides the A/B test still needs (0 once it decided).",
            ["challenger"],
            registry=r,
        )
        self.monitor_runs = Counter(
            "duration_router_monitor_runs_total",
            "Scheduled monitoring runs (drift and A/B reports), by outcome.",
            ["outcome"],
            registry=r,
        )
        for outcome in ("ok", "error"):
            self.monitor_runs.labels(outcome)
        self.monitor_last_success = Gauge(
            "duration_router_monitor_last_success_timestamp_seconds",
            "Unix time the last scheduled monitoring run ended well (0 before the first).",
            registry=r,
        )
        self.monitor_run_seconds = Gauge(
            "duration_router_monitor_last_run_duration_seconds",
            "How long the last scheduled monitoring run took, seconds.",
            registry=r,
        )
        self.monitor_interval = Gauge(
            "duration_router_monitor_interval_seconds",
            "Seconds between scheduled monitoring runs (0: no schedule).",
            registry=r,
        )
        self.feedback_rides = Counter(
            "duration_router_feedback_rides_total",
            "Rides whose actual duration POST /feedback stored.",
            registry=r,
        )
        self.last_feedback = Gauge(
            "duration_router_feedback_last_received_timestamp_seconds",
            "Unix time of the newest actual duration in the prediction log (0 while none).",
            registry=r,
        )

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
        """Set ``traffic_weight`` to exactly the variants of ``table``; start the counters of
        a newly deployed variant at 0 (a series born at 1 hides its first increase)."""
        self.weights.clear()
        for variant in table.variants:
            version = variant.model.version
            self.weights.labels(variant.name, version).set(variant.weight)
            self.variant_predictions.labels(variant.name, version, str(variant.shadow).lower())
            self.variant_errors.labels(variant.name, version)
            if variant.name != CHAMPION:  # the guardrails watch the others
                for reason in ROLLBACK_REASONS:
                    self.guardrail_rollbacks.labels(variant.name, reason)

    def show_drift(self, variant: str, report: Mapping[str, Any]) -> None:
        """Set the drift gauges of ``variant`` from a drift report's ``to_dict()``: its
        ``features`` (``{name: {"psi": float, ...}}``), ``unseen_pair_share`` (0-1) and
        ``drifted``."""
        features: Mapping[str, Mapping[str, Any]] = report.get("features", {})
        for feature, values in features.items():
            self.drift_psi.labels(variant, feature).set(float(values["psi"]))
        self.unseen_pairs.labels(variant).set(float(report.get("unseen_pair_share", 0.0)))
        self.drift_detected.labels(variant).set(1.0 if report.get("drifted") else 0.0)

    def show_drift_report(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Make the drift gauges show exactly ``entries`` (a monitoring report's
        ``variants``): those with figures (a ``drifted`` key) are set, every other variant's
        series removed (undeployed, or a new version without enough rides yet)."""
        shown = [e for e in entries if "drifted" in e]
        for entry in shown:
            self.show_drift(entry["variant"], entry)
        names = {e["variant"] for e in shown}
        psi_keys = {(e["variant"], f) for e in shown for f in e.get("features", {})}
        _keep_only(self.drift_psi, ("variant", "feature"), psi_keys)
        _keep_only(self.unseen_pairs, ("variant",), {(n,) for n in names})
        _keep_only(self.drift_detected, ("variant",), {(n,) for n in names})

    def show_ab(self, reports: Iterable[tuple[str, bool, ABReport]]) -> None:
        """Make the A/B gauges show exactly ``reports``: ``(challenger, shadow, report)``
        for each non-champion variant (``shadow``: the challenger is a shadow variant, its
        rows are the report's shadow ones). A report without a comparison (a side has no
        rows) shows ``inconclusive`` and no p-value."""
        kept: dict[str, set[tuple[str, ...]]] = {"p": set(), "more": set(), "labelled": set()}
        challengers = set()
        for challenger, shadow, report in reports:
            challengers.add(challenger)
            comparison = report.comparison
            verdict = ab_verdict(report)
            for value in VERDICTS:
                self.ab_verdict.labels(challenger, value).set(1.0 if value == verdict else 0.0)
            if comparison is not None and comparison.p_value is not None:
                self.ab_p_value.labels(challenger).set(comparison.p_value)
                kept["p"].add((challenger,))
            if comparison is not None and comparison.more_labelled_needed is not None:
                self.ab_more_needed.labels(challenger).set(comparison.more_labelled_needed)
                kept["more"].add((challenger,))
            sides = (("champion", report.variant("champion")),
                     (challenger, report.variant(challenger, shadow=shadow)))  # fmt: skip
            for side, stats in sides:
                self.ab_labelled.labels(challenger, side).set(stats.labelled if stats else 0)
                kept["labelled"].add((challenger, side))
        _keep_only(self.ab_verdict, ("challenger", "verdict"),
                   {(c, v) for c in challengers for v in VERDICTS})  # fmt: skip
        _keep_only(self.ab_p_value, ("challenger",), kept["p"])
        _keep_only(self.ab_more_needed, ("challenger",), kept["more"])
        _keep_only(self.ab_labelled, ("challenger", "variant"), kept["labelled"])

    def observe_feedback(self, stored: int, at: float) -> None:
        """Count ``stored`` rides whose actual duration was stored at ``at`` (Unix time)."""
        if stored:
            self.feedback_rides.inc(stored)
            self.last_feedback.set(at)

    def show_last_feedback(self, at: float | None) -> None:
        """The newest actual duration in the log (Unix time; None: there is none yet)."""
        self.last_feedback.set(at or 0.0)


def ab_verdict(report: ABReport) -> str:
    """The verdict of ``report``; ``inconclusive`` when it has no comparison (a side without
    rows)."""
    return str(report.comparison.verdict if report.comparison else Verdict.INCONCLUSIVE)


def _keep_only(
    metric: Gauge, labelnames: tuple[str, ...], keep: Collection[tuple[str, ...]]
) -> None:
    """Remove the series of ``metric`` whose label values (in ``labelnames`` order) are not
    in ``keep``; the others are left as they are (no gap for a scrape to see)."""
    for family in metric.collect():
        for sample in family.samples:
            key = tuple(sample.labels[name] for name in labelnames)
            if key not in keep:
                metric.remove(*key)


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
