"""MLflow's scoring protocol: ``POST /invocations``, ``GET /ping``, ``GET /version``, as
``mlflow models serve`` answers them (:mod:`duration_service.protocols.mlflow_scoring`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from duration_service.api.deps import ScorerDep
from duration_service.metrics import tag_error
from duration_service.protocols import mlflow_scoring
from duration_service.protocols.documents import (
    MlflowError,
    MlflowPredictions,
    invocations_schema,
    request_body,
)
from duration_service.protocols.rides import ProtocolError, read_body, read_json

ROUTE = "/invocations"


def build_router(max_batch_size: int, *, routed: bool = False) -> APIRouter:
    """The MLflow routes; ``routed``: the router's answers (a variant per ride)."""
    router = APIRouter(tags=["MLflow scoring protocol"])
    errors = {
        status: {"model": MlflowError, "description": text}
        for status, text in {
            400: "not JSON, not one of the formats, or rows that do not fit the columns",
            413: "body larger than max_body_bytes",
            415: "the body is not application/json",
            422: "a column missing or unknown, or a bad value (named like /predict's)",
            503: "no model to score with",
        }.items()
    }
    if routed:
        errors[409] = {"model": MlflowError, "description": "X-Model-Variant names no variant"}

    @router.post(
        ROUTE,
        response_model=MlflowPredictions,
        response_model_exclude_none=True,
        responses=errors,  # type: ignore[arg-type]  # FastAPI's loose dict type
        openapi_extra=request_body(
            invocations_schema(max_batch_size),
            "dataframe_split, dataframe_records or inputs (MLflow's scoring formats)",
        ),
    )
    async def invocations(request: Request, scorer: ScorerDep) -> JSONResponse:
        """Predict the duration (minutes) of each ride of an MLflow scoring request."""
        try:
            body = await read_body(request)
            document = read_json(body, request.headers.get("content-type"))
            rides = mlflow_scoring.parse_invocation(document, max_batch_size)
            scored = await scorer.score(rides, version=None, route=ROUTE, headers=request.headers)
        except ProtocolError as exc:
            tag_error(request, exc.kind)
            return JSONResponse(status_code=exc.status, content=mlflow_scoring.error_body(exc))
        return JSONResponse(mlflow_scoring.predictions_body(scored, routed=routed))

    @router.api_route(
        "/ping",
        methods=["GET", "HEAD"],
        response_class=PlainTextResponse,
        responses={
            200: {"content": {"text/plain": {"example": "\n"}}},
            503: {"description": "no model to score with"},
        },
    )
    async def ping(scorer: ScorerDep) -> PlainTextResponse:
        """MLflow's health check: 200 when predictions can be served, else 503."""
        reason = scorer.unavailable()
        if reason is not None:
            return PlainTextResponse(reason + "\n", status_code=503)
        return PlainTextResponse("\n")

    @router.get(
        "/version",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"example": "0.1.0"}}}},
    )
    async def version(request: Request) -> PlainTextResponse:
        """The server's version (MLflow's server answers its MLflow version here)."""
        return PlainTextResponse(str(request.app.version))

    return router
