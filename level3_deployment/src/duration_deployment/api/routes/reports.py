"""The read-only reports: A/B (``/ab/report``) and drift (``/monitoring/report``), as JSON
and as HTML pages. Open like ``/metrics``; one report is computed at a time."""

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse

from duration_deployment import report_html
from duration_deployment.api.deps import (
    LogDep,
    ManagerDep,
    MetricsDep,
    ReportLimiterDep,
    SettingsDep,
)
from duration_deployment.api.responses import PAGE_ERRORS, REPORT_ERRORS
from duration_deployment.experiment import configured_ab_report
from duration_deployment.monitoring import monitoring_report
from duration_deployment.routing import CHALLENGER, CHAMPION, VARIANT_NAME

router = APIRouter(tags=["reports"])

Challenger = Annotated[
    str, Query(pattern=VARIANT_NAME, description="the variant to compare with the champion")
]


def _challenger(name: str) -> str:
    if name == CHAMPION:
        raise HTTPException(422, detail="challenger: the champion cannot be its own challenger")
    return name


Since = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**62,
        description="a log position (a history entry's log_position): the window starts there "
        "if that is later than the experiment's start (one rollout stage's rides)",
    ),
]


@router.get("/ab/report", responses=REPORT_ERRORS)
async def ab_json(
    settings: SettingsDep,
    log: LogDep,
    limiter: ReportLimiterDep,
    challenger: Challenger = CHALLENGER,
    since: Since = None,
) -> dict[str, Any]:
    """Per-variant counts, RMSE, MAE, latency and error rate; the challenger's difference in
    squared error with its confidence interval and p-value; the verdict."""
    name = _challenger(challenger)
    report, _ = await anyio.to_thread.run_sync(
        configured_ab_report, settings, log, name, since, limiter=limiter
    )
    result: dict[str, Any] = report.to_dict()
    return result


@router.get("/ab/report.html", response_class=HTMLResponse, responses=PAGE_ERRORS)
async def ab_html(
    settings: SettingsDep,
    log: LogDep,
    limiter: ReportLimiterDep,
    challenger: Challenger = CHALLENGER,
    since: Since = None,
) -> HTMLResponse:
    """The A/B report as a page with plots."""
    name = _challenger(challenger)

    def render() -> str:
        return report_html.render_ab_html(*configured_ab_report(settings, log, name, since))

    return HTMLResponse(await anyio.to_thread.run_sync(render, limiter=limiter))


@router.get("/monitoring/report", responses=REPORT_ERRORS)
async def drift_json(
    settings: SettingsDep,
    log: LogDep,
    manager: ManagerDep,
    metrics: MetricsDep,
    limiter: ReportLimiterDep,
) -> dict[str, Any]:
    """Population stability index per input feature and for the predictions, and the share
    of unseen pickup/dropoff pairs, per deployed variant."""

    def build() -> dict[str, Any]:
        return monitoring_report(log, manager.table, metrics, window=settings.drift_window)

    return await anyio.to_thread.run_sync(build, limiter=limiter)


@router.get("/monitoring/report.html", response_class=HTMLResponse, responses=PAGE_ERRORS)
async def drift_html(
    settings: SettingsDep,
    log: LogDep,
    manager: ManagerDep,
    metrics: MetricsDep,
    limiter: ReportLimiterDep,
) -> HTMLResponse:
    """The drift report as a page with plots."""

    def render() -> str:
        report = monitoring_report(log, manager.table, metrics, window=settings.drift_window)
        return report_html.render_drift_html(report)

    return HTMLResponse(await anyio.to_thread.run_sync(render, limiter=limiter))
