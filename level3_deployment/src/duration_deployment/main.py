"""The app factory: ``create_app(settings)`` builds the router; variants deploy at start-up.

Level 1's shape (``duration_service.main``) with what level 3 adds: the deployment manager
and the data plane are made in the lifespan (they need the opened prediction log and the
registry), and every :class:`~duration_deployment.errors.RouterError` and database failure
answers JSON with its status, like level 1's errors.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from duration_deployment.api.routes import (
    deployments,
    feedback,
    history,
    ops,
    predictions,
    reports,
)
from duration_deployment.config import RouterSettings
from duration_deployment.dataplane import DataPlane
from duration_deployment.errors import RouterError
from duration_deployment.journal import JournalError
from duration_deployment.manager import DeploymentManager
from duration_deployment.metrics import RouterMetrics
from duration_deployment.monitor_loop import ScheduledMonitor
from duration_deployment.prediction_log import PredictionLog, database_error
from duration_deployment.registry import Registry
from duration_deployment.scoring import RouterScorer
from duration_service.api.routes import mlflow_protocol, open_inference
from duration_service.main import add_error_handlers
from duration_service.metrics import BodySizeLimitMiddleware, MetricsMiddleware, tag_error
from duration_service.protocols.paths import error_body_for

logger = logging.getLogger(__name__)

DESCRIPTION = """
Level 3 of the MLOps maturity ladder: registered versions of the NYC taxi trip-duration model
(minutes) behind one API, split by weight with sticky assignment by `ride_id`, shadow variants,
a prediction log, A/B analysis, guardrails and drift monitoring. Control routes need
`Authorization: Bearer <token>`. MLflow's scoring protocol (`POST /invocations`) and the Open
Inference Protocol V2 (`/v2/...`) are routed like `/predict`.
"""


def create_app(
    settings: RouterSettings,
    *,
    registry: Registry | None = None,
    log: PredictionLog | None = None,
    metrics: RouterMetrics | None = None,
) -> FastAPI:
    """Build the router. Nothing is opened or loaded until the app starts (its lifespan).

    Args:
        settings: Router settings (token, registry, prediction log, limits).
        registry: The registry to deploy from; default the one ``settings`` names.
        log: The prediction log; default one at ``settings.prediction_log_url``.
        metrics: The metrics; default a new :class:`RouterMetrics`.
    """
    metrics = metrics or RouterMetrics()
    log = log or prediction_log(settings)
    metrics.attach_log(log)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if log.engine is None:  # duration-router opens it first, to report errors plainly
            await anyio.to_thread.run_sync(log.open)
        reg = registry or Registry(
            settings.tracking_uri,
            settings.model_name,
            settings.model_cache_dir,
            allow_version_mismatch=settings.allow_version_mismatch,
        )
        manager = DeploymentManager(settings, reg, log, metrics)
        dataplane = DataPlane(manager, log, metrics)
        app.state.manager = manager
        app.state.dataplane = dataplane
        app.state.scorer = RouterScorer(dataplane, settings.model_name)
        if settings.deploy_on_start:
            await manager.start()
        monitor = ScheduledMonitor(settings, log, manager, metrics, app.state.report_limiter)
        app.state.monitor = monitor
        gc.collect()
        gc.freeze()  # loaded models out of the collector's way (level 1: p99 88 -> 17 ms)
        monitor.start()
        try:
            yield
        finally:
            await monitor.aclose()  # before the log it reads is closed
            await manager.aclose()
            await dataplane.aclose()
            await anyio.to_thread.run_sync(log.close)

    from duration_deployment import __version__

    app = FastAPI(
        title="NYC taxi trip duration router",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.log = log
    app.state.report_limiter = anyio.CapacityLimiter(1)
    app.include_router(predictions.build_router(settings.max_batch_size))
    app.include_router(deployments.router)
    app.include_router(feedback.router)
    app.include_router(history.router)
    app.include_router(reports.router)
    app.include_router(ops.router)
    app.include_router(mlflow_protocol.build_router(settings.max_batch_size, routed=True))
    app.include_router(
        open_inference.build_router("duration-router", settings.max_batch_size, routed=True)
    )
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, error_body=error_body_for
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    add_error_handlers(app)
    add_router_error_handlers(app, log)
    return app


def prediction_log(settings: RouterSettings) -> PredictionLog:
    """The prediction log ``settings`` describe (not opened)."""
    return PredictionLog(
        settings.prediction_log_url,
        batch_rows=settings.log_batch_rows,
        flush_seconds=settings.log_flush_seconds,
        max_pending=settings.log_max_pending,
        journal_dir=settings.log_journal_dir,
        journal_fsync=settings.log_journal_fsync,
    )


def add_router_error_handlers(app: FastAPI, log: PredictionLog) -> None:
    """JSON answers for the router's own failures: a :class:`RouterError` with its status,
    and a database error of the prediction log as 503 naming the database (no password)."""

    @app.exception_handler(SQLAlchemyError)
    async def log_unavailable(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        tag_error(request, "log_unavailable")
        where = log.engine.url.render_as_string(hide_password=True) if log.engine else log.url
        reason = database_error(exc)[:200]
        logger.error("prediction log %s: %s", where, reason)
        detail = f"the prediction log database {where} is unavailable: {reason}"
        return JSONResponse(status_code=503, content={"detail": detail, "errors": []})

    @app.exception_handler(JournalError)
    async def journal_unavailable(request: Request, exc: JournalError) -> JSONResponse:
        # The prediction was made but cannot be recorded: not answered, as promised.
        tag_error(request, "log_unavailable")
        logger.error("prediction log journal: %s", exc)
        detail = f"the prediction could not be recorded: {exc}"
        return JSONResponse(status_code=503, content={"detail": detail, "errors": []})

    @app.exception_handler(RouterError)
    async def router_error(request: Request, exc: RouterError) -> JSONResponse:
        if exc.kind is not None:
            tag_error(request, exc.kind)
        return JSONResponse(status_code=exc.status, content={"detail": str(exc), "errors": []})
