"""Operations routes: liveness, readiness, the served model's metadata, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from duration_service.api.deps import MetricsDep, ModelDep, StateDep
from duration_service.schemas import ErrorResponse, Health, ModelInfo, Readiness

router = APIRouter(tags=["operations"])


@router.head("/health", include_in_schema=False, response_model=None)
@router.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness: 200 whenever the process answers, model or not."""
    return Health(status="ok")


@router.head("/ready", include_in_schema=False, response_model=None)
@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "no model is loaded; the reason is given"}},
)
async def ready(state: StateDep) -> Readiness | JSONResponse:
    """Readiness: 200 when a model is loaded, else 503 with the reason."""
    if state.model is None:
        body = Readiness(status="not ready", reason=state.error)
        return JSONResponse(status_code=503, content=body.model_dump())
    return Readiness(status="ready", model_version=state.model.version)


@router.get("/model", response_model=ModelInfo, responses={503: {"model": ErrorResponse}})
async def model_info(model: ModelDep) -> ModelInfo:
    """The served artifact: version, sha256, path and its saved metadata (data, metrics)."""
    return ModelInfo(
        model_version=model.version,
        sha256=model.sha256,
        path=str(model.path),
        metadata=model.metadata,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/plain": {
                    "example": 'duration_http_requests_total{method="POST",'
                    'route="/predict",status="200"} 42.0\n'
                }
            },
            "description": "Prometheus text exposition format",
        }
    },
)
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests, latency, predicted durations, errors, model info."""
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)
