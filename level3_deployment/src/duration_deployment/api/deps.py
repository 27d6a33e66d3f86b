"""Dependencies handed to routes, as ``Annotated`` aliases (level 1's ``api/deps.py`` shape).

The collaborators live on ``app.state`` (set by :func:`duration_deployment.main.create_app`),
so a test replaces any of them with ``app.dependency_overrides``. They are ``async def`` on
purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a hop that cost the router
a third of its throughput in ``bench_router.py``.
"""

from __future__ import annotations

import hmac
from typing import Annotated

import anyio
from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from duration_deployment.config import RouterSettings
from duration_deployment.dataplane import DataPlane
from duration_deployment.manager import DeploymentManager
from duration_deployment.metrics import RouterMetrics
from duration_deployment.prediction_log import PredictionLog
from duration_deployment.routing import VARIANT_HEADER
from duration_service.metrics import tag_error

#: Optional header naming who made a control call, recorded in the history.
ACTOR_HEADER = "X-Actor"

_bearer = HTTPBearer(auto_error=False, description="the router's control token")


async def get_manager(request: Request) -> DeploymentManager:
    """The deployment manager (created in the lifespan)."""
    manager: DeploymentManager = request.app.state.manager
    return manager


async def get_dataplane(request: Request) -> DataPlane:
    """The data plane of routed predictions (created in the lifespan)."""
    dataplane: DataPlane = request.app.state.dataplane
    return dataplane


async def get_log(request: Request) -> PredictionLog:
    """The prediction log."""
    log: PredictionLog = request.app.state.log
    return log


async def get_metrics(request: Request) -> RouterMetrics:
    """The router's Prometheus metrics."""
    metrics: RouterMetrics = request.app.state.metrics
    return metrics


async def get_router_settings(request: Request) -> RouterSettings:
    """The settings the app was created with."""
    settings: RouterSettings = request.app.state.settings
    return settings


async def get_report_limiter(request: Request) -> anyio.CapacityLimiter:
    """One report at a time: each reads up to the whole experiment from the log, and the
    report routes are open; concurrent ones queue instead of multiplying memory."""
    limiter: anyio.CapacityLimiter = request.app.state.report_limiter
    return limiter


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let the request through only with ``Authorization: Bearer <the control token>``.

    Raises:
        HTTPException: 401 without a bearer token, 403 with another one.
    """
    if credentials is None:
        tag_error(request, "unauthorized")
        raise HTTPException(
            401,
            detail="this route needs the control token: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    settings: RouterSettings = request.app.state.settings
    token = settings.token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), token):
        tag_error(request, "forbidden")
        raise HTTPException(403, detail="the bearer token is not the control token")


ManagerDep = Annotated[DeploymentManager, Depends(get_manager)]
DataPlaneDep = Annotated[DataPlane, Depends(get_dataplane)]
LogDep = Annotated[PredictionLog, Depends(get_log)]
MetricsDep = Annotated[RouterMetrics, Depends(get_metrics)]
SettingsDep = Annotated[RouterSettings, Depends(get_router_settings)]
ReportLimiterDep = Annotated[anyio.CapacityLimiter, Depends(get_report_limiter)]
VariantHeader = Annotated[
    str | None,
    Header(
        alias=VARIANT_HEADER,
        max_length=40,
        description="force this live variant (e.g. challenger) instead of the traffic split",
    ),
]
ActorHeader = Annotated[
    str, Header(alias=ACTOR_HEADER, max_length=100, description="who is calling (history)")
]
