"""``/health``, ``/ready`` and ``/metrics``: what an orchestrator and Prometheus probe."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from duration_deployment.api.deps import ManagerDep, MetricsDep
from duration_service.schemas import ErrorResponse

router = APIRouter(tags=["ops"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"model": ErrorResponse}})
async def ready(manager: ManagerDep) -> JSONResponse:
    """Readiness: at least one live variant is deployed; when none is and start-up could not
    deploy, ``reason`` says why (e.g. the registry refused the router's credentials)."""
    table = manager.table
    body: dict[str, object] = {
        "status": "ready" if table.live else "not ready",
        "revision": table.revision,
        "variants": {v.name: v.model.version for v in table.variants},
    }
    if not table.live and manager.start_problem:
        body["reason"] = manager.start_problem
    return JSONResponse(status_code=200 if table.live else 503, content=body)


@router.get("/metrics", include_in_schema=False)
async def prometheus(metrics: MetricsDep) -> Response:
    """Prometheus exposition text."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
