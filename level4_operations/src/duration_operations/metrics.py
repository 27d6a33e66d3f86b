"""The loop's Prometheus metrics (prefix ``duration_operations_``), in a registry of their own;
``duration-operate run --metrics-port`` serves them for Prometheus to scrape beside the
router's ``/metrics`` (``monitoring/prometheus.yml``, alerting rules in
``monitoring/alerts.yml``).

- ``passes_total{outcome}``: monitor passes (``ok``, ``frozen``, ``error``);
- ``trigger_readings_total{trigger,fired}``: every trigger reading, fired or not;
- ``retrains_total{outcome}``: retrains by outcome (gate passed/failed, data refused, ...);
- ``rollout_actions_total{action}``: start, advance, promote, roll back, wait, record;
- ``promotions_total`` / ``rollbacks_total``: rollouts ended either way;
- ``drift_psi{feature}``: the largest PSI of the latest drift reading (unitless);
- ``live_rmse_seconds`` / ``champion_val_rmse_seconds``: the performance reading (RMSE in
  seconds: Prometheus' base unit);
- ``rollout_stage``: index of the challenger's stage (-1: no rollout);
- ``registry_tag_failures_total``: audit tags a registry that was away did not take;
- ``frozen``: 1 while frozen; ``last_pass_timestamp_seconds``: when the last pass ended.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class OperationsMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        prefix = "duration_operations_"
        self.passes = Counter(prefix + "passes", "Monitor passes.", ["outcome"], registry=r)
        self.trigger_readings = Counter(
            prefix + "trigger_readings", "Trigger readings.", ["trigger", "fired"], registry=r
        )
        self.retrains = Counter(
            prefix + "retrains", "Retrains by outcome.", ["outcome"], registry=r
        )
        self.rollout_actions = Counter(
            prefix + "rollout_actions", "Rollout steps taken.", ["action"], registry=r
        )
        self.promotions = Counter(prefix + "promotions", "Rollouts that promoted.", registry=r)
        self.rollbacks = Counter(prefix + "rollbacks", "Rollouts rolled back.", registry=r)
        self.drift_psi = Gauge(
            prefix + "drift_psi",
            "Largest PSI of the latest drift reading.",
            ["feature"],
            registry=r,
        )
        # Prometheus' base unit is the second (promtool refuses _minutes), as for the router's
        # predicted durations; the loop's own figures are minutes.
        self.live_rmse = Gauge(
            prefix + "live_rmse_seconds", "Champion's live RMSE, seconds.", registry=r
        )
        self.val_rmse = Gauge(
            prefix + "champion_val_rmse_seconds", "Champion's validation RMSE, seconds.", registry=r
        )
        self.stage = Gauge(
            prefix + "rollout_stage", "Stage index of the rollout (-1: none).", registry=r
        )
        self.frozen = Gauge(prefix + "frozen", "1 while the loop is frozen.", registry=r)
        self.last_pass = Gauge(
            prefix + "last_pass_timestamp_seconds", "Unix time the last pass ended.", registry=r
        )
        self.tag_failures = Counter(
            prefix + "registry_tag_failures",
            "Version tags not written (registry away).",
            registry=r,
        )
        self.stage.set(-1)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
