"""The scheduled monitor: the drift and A/B reports recomputed every
``monitor_interval_seconds``, off the request path, so their gauges are current without anyone
reading a report route (Prometheus' drift and A/B alerts need that).

A run computes exactly what the report routes compute (:func:`~duration_deployment.monitoring.
monitoring_report` and :func:`~duration_deployment.experiment.configured_ab_report`), in a
worker thread under the routes' limiter (one report at a time), then shows the results in the
gauges (:class:`~duration_deployment.metrics.RouterMetrics`). A run that fails is logged and
counted (``duration_router_monitor_runs_total{outcome="error"}``); the next one comes on time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from dataclasses import dataclass

import anyio
import anyio.to_thread

from duration_deployment.config import RouterSettings
from duration_deployment.experiment import configured_ab_report
from duration_deployment.manager import DeploymentManager
from duration_deployment.metrics import RouterMetrics, ab_verdict
from duration_deployment.monitoring import monitoring_report
from duration_deployment.prediction_log import PredictionLog
from duration_deployment.routing import CHAMPION

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorRun:
    """What one scheduled run found.

    Attributes:
        drifted: Variants whose window drifted (duration_core's rule).
        verdicts: ``{challenger: verdict}`` of each A/B report (``inconclusive`` when a side
            has no rows).
        last_feedback_at: Unix time of the newest actual duration in the log, None when none.
        seconds: How long the run took.
    """

    drifted: tuple[str, ...]
    verdicts: dict[str, str]
    last_feedback_at: float | None
    seconds: float


class ScheduledMonitor:
    """Runs the monitoring reports every ``settings.monitor_interval_seconds`` (0: never).

    Args:
        settings: Router settings (the interval, the drift window, the A/B test's settings).
        log: The prediction log.
        manager: Whose routing table says which variants are reported.
        metrics: Where the results are shown.
        limiter: The report routes' limiter (one report at a time).
    """

    def __init__(
        self,
        settings: RouterSettings,
        log: PredictionLog,
        manager: DeploymentManager,
        metrics: RouterMetrics,
        limiter: anyio.CapacityLimiter,
    ) -> None:
        self.settings, self.log, self.manager = settings, log, manager
        self.metrics, self.limiter = metrics, limiter
        self.interval = settings.monitor_interval_seconds
        self._task: asyncio.Task[None] | None = None
        metrics.monitor_interval.set(self.interval)

    def start(self) -> None:
        """Start the schedule in the running event loop (nothing when the interval is 0)."""
        if self.interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def aclose(self) -> None:
        """Stop the schedule; a run in its worker thread is let finish first (the log it
        reads is closed next)."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.run_once()

    async def run_once(self) -> MonitorRun | None:
        """One run in a worker thread, under the report limiter; None when it failed (the
        failure is logged and counted, never raised)."""
        try:
            run = await anyio.to_thread.run_sync(self.compute, limiter=self.limiter)
        except Exception:
            self.metrics.monitor_runs.labels("error").inc()
            logger.exception("scheduled monitoring run failed (the next in %.0f s)", self.interval)
            return None
        self.metrics.monitor_runs.labels("ok").inc()
        self.metrics.monitor_last_success.set(time.time())
        self.metrics.monitor_run_seconds.set(run.seconds)
        logger.debug("scheduled monitoring run: %s", run)
        return run

    def compute(self) -> MonitorRun:
        """The drift report of every deployed variant, the A/B report of every non-champion
        one against the champion (no ``since``: the whole experiment, as ``GET /ab/report``)
        and the newest feedback, shown in the gauges. Blocking: a worker thread's job.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: The log database is unavailable.
        """
        started = time.perf_counter()
        table = self.manager.table  # one table for the whole run
        drift = monitoring_report(self.log, table, self.metrics, window=self.settings.drift_window)
        reports = []
        if table.get(CHAMPION) is not None:
            for variant in table.variants:
                if variant.name != CHAMPION:
                    report, _ = configured_ab_report(self.settings, self.log, variant.name)
                    reports.append((variant.name, variant.shadow, report))
        self.metrics.show_ab(reports)
        last_feedback = self.log.last_feedback_at()
        self.metrics.show_last_feedback(last_feedback)
        return MonitorRun(
            drifted=tuple(e["variant"] for e in drift["variants"] if e.get("drifted")),
            verdicts={name: ab_verdict(report) for name, _, report in reports},
            last_feedback_at=last_feedback,
            seconds=time.perf_counter() - started,
        )
