"""The app factory: ``create_app(settings)`` builds the FastAPI app; the model loads at start-up."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from duration_core import __version__ as core_version
from duration_service.api.routes import mlflow_protocol, open_inference, ops, predict
from duration_service.config import Settings, get_settings
from duration_service.field_errors import field_errors, summary
from duration_service.metrics import (
    BodySizeLimitMiddleware,
    MetricsMiddleware,
    ServiceMetrics,
    tag_error,
)
from duration_service.model_state import ModelState, PredictionBatcher
from duration_service.protocols.paths import error_body_for
from duration_service.protocols.rides import JSON_ONLY, is_json_media
from duration_service.protocols.scoring import ModelScorer
from duration_service.version import __version__

logger = logging.getLogger(__name__)

DESCRIPTION = """
Level 1 of the MLOps maturity ladder: the NYC taxi trip-duration model (minutes), trained by
`duration-train` from TLC trip records, served over HTTP. Zones are TLC taxi zone IDs 1-265;
distances are miles. Unknown fields are rejected. Beside its own `/predict`, the service speaks
MLflow's scoring protocol (`POST /invocations`) and the Open Inference Protocol V2 (`/v2/...`).
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
        app.state.scorer = ModelScorer(
            settings.model_name, state, app.state.batcher, app.state.batch_limiter, metrics
        )
        if state.model is not None:
            meta = state.model.metadata
            metrics.model_info.labels(
                state.model.version,
                str(meta.get("model", "unknown")),
                str(meta.get("versions", {}).get("scikit-learn", "unknown")),
            ).set(1)
        yield

    app = FastAPI(
        title="NYC taxi trip duration service",
        version=__version__,
        description=DESCRIPTION + f"\nduration-core {core_version}.",
        lifespan=lifespan,
        redirect_slashes=False,  # /predict/ is not a route: 404, not a 307 to follow
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.include_router(predict.build_router(settings.max_batch_size))
    app.include_router(ops.router)
    app.include_router(mlflow_protocol.build_router(settings.max_batch_size))
    app.include_router(open_inference.build_router("duration-serve", settings.max_batch_size))
    # The last added is the outermost: the metrics also count the size limit's 413s.
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, error_body=error_body_for
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    add_error_handlers(app)
    return app


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the app's OpenAPI document gives the first path template matching
    ``path`` (``/deployments/champion`` -> ``/deployments/{variant}``); empty when none does."""
    for template, operations in app.openapi().get("paths", {}).items():
        regex, _, _ = compile_path(template)
        if regex.match(path):
            return sorted(method.upper() for method in operations)
    return []


def add_error_handlers(app: FastAPI) -> None:
    """JSON error answers: 400 bad JSON, 415 not JSON, 422 naming each field, 500 without a
    traceback. Level 3's router installs the same handlers."""

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        invalid_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if invalid_json is not None:
            tag_error(request, "bad_json")
            loc = invalid_json.get("loc", ())
            where = f" (at character {loc[1]})" if len(loc) > 1 else ""
            reason = invalid_json.get("ctx", {}).get("error", "")
            detail = f"request body is not valid JSON: {reason}{where}"
            return JSONResponse(status_code=400, content={"detail": detail, "errors": []})
        if not is_json_media(request.headers.get("content-type")) and any(
            tuple(e.get("loc", ())) == ("body",) for e in errors
        ):
            tag_error(request, "unsupported_media_type")
            return JSONResponse(status_code=415, content={"detail": JSON_ONLY, "errors": []})
        tag_error(request, "validation")
        fields = field_errors(errors)
        detail = summary(fields, len(errors))
        return JSONResponse(status_code=422, content={"detail": detail, "errors": fields})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's "There was an error parsing the body": say why (bad UTF-8, an integer
            # of thousands of digits, nesting too deep for the parser).
            tag_error(request, "bad_json")
            detail = f"request body is not valid JSON: {exc.__cause__}"[:300]
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette names the methods of the first route of the path only; a path served
            # by several routes (GET and POST /deployments in level 3) must list them all.
            methods = allowed_methods(request.app, request.url.path)
            if methods:
                headers = {**(headers or {}), "Allow": ", ".join(methods)}
        content = error_body_for(request.url.path, exc.status_code, detail)
        return JSONResponse(
            status_code=exc.status_code,
            content=content or {"detail": detail, "errors": []},
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Counted as "internal" by the metrics middleware, which sees the exception first.
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal error", "errors": []})
