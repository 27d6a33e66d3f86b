"""The app factory: ``create_app(settings)`` builds the FastAPI app; the model loads at start-up."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from duration_core import __version__ as core_version
from duration_service.api.routes import ops, predict
from duration_service.config import Settings, get_settings
from duration_service.metrics import MetricsMiddleware, ServiceMetrics
from duration_service.model_state import ModelState, PredictionBatcher

logger = logging.getLogger(__name__)

DESCRIPTION = """
Level 1 of the MLOps maturity ladder: the NYC taxi trip-duration model (minutes), trained by
`duration-train` from TLC trip records, served over HTTP. Zones are TLC taxi zone IDs 1-265;
distances are miles. Unknown fields are rejected.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service. Nothing is loaded until the app starts (its lifespan).

    Args:
        settings: Configuration; default :func:`~duration_service.config.get_settings`
            (environment variables prefixed ``DURATION_``).
    """
    settings = settings or get_settings()
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ModelState.load(settings)
        # The model is long-lived: move it out of the garbage collector's generations so the
        # full collections that request garbage triggers do not rescan it (tail latency).
        gc.collect()
        gc.freeze()
        app.state.model_state = state
        app.state.batcher = PredictionBatcher(state.model) if state.model else None
        app.state.batch_limiter = anyio.CapacityLimiter(1)
        if state.model is not None:
            meta = state.model.metadata
            metrics.model_info.labels(
                state.model.version,
                str(meta.get("model", "unknown")),
                str(meta.get("versions", {}).get("scikit-learn", "unknown")),
            ).set(1)
        yield

    from duration_service import __version__

    app = FastAPI(
        title="NYC taxi trip duration service",
        version=__version__,
        description=DESCRIPTION + f"\nduration-core {core_version}.",
        lifespan=lifespan,
        # Starlette's body limit: 413 before a huge body is buffered and validated.
        max_body_size=settings.max_body_bytes,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.include_router(predict.router)
    app.include_router(ops.router)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _add_error_handlers(app, metrics)
    return app


def field_name(loc: Sequence[Any]) -> str:
    """``("body", "rides", 3, "trip_distance")`` -> ``"rides[3].trip_distance"``."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path") else loc)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def _add_error_handlers(app: FastAPI, metrics: ServiceMetrics) -> None:
    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            metrics.errors.labels("bad_json").inc()
            reason = next(e for e in errors if e.get("type") == "json_invalid")
            detail = f"request body is not valid JSON: {reason.get('ctx', {}).get('error', '')}"
            return JSONResponse(status_code=400, content={"detail": detail.strip(), "errors": []})
        metrics.errors.labels("validation").inc()
        fields = [
            {
                "field": field_name(e.get("loc", ())),
                "message": e.get("msg", ""),
                "type": e.get("type", ""),
            }
            for e in errors
        ]
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        if len(fields) > 5:
            detail += f"; and {len(fields) - 5} more"
        return JSONResponse(status_code=422, content={"detail": detail, "errors": fields})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 503:
            metrics.errors.labels("model_unavailable").inc()
        elif exc.status_code == 413 and str(exc.detail).startswith("rides:"):
            metrics.errors.labels("batch_too_large").inc()
        return JSONResponse(
            status_code=exc.status_code,
            content={"detail": str(exc.detail), "errors": []},
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        metrics.errors.labels("internal").inc()
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal error", "errors": []})
