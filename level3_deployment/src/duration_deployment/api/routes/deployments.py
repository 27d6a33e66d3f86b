"""The control plane: ``/deployments`` (the one call, weights, removal), ``/promote`` and
``/rollback``. Every route needs the bearer token; each change is the manager's."""

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Query
from fastapi import Path as FastAPIPath

from duration_deployment.api.deps import ActorHeader, ManagerDep, require_token
from duration_deployment.api.responses import CONTROL_ERRORS
from duration_deployment.routing import VARIANT_NAME
from duration_deployment.schemas import (
    ControlResult,
    DeploymentsState,
    DeployRequest,
    PromoteRequest,
    WeightRequest,
)

VariantPath = Annotated[str, FastAPIPath(pattern=VARIANT_NAME, description="a variant's name")]

router = APIRouter(
    tags=["control"], dependencies=[Depends(require_token)], responses=CONTROL_ERRORS
)


@router.get("/deployments", response_model=DeploymentsState)
async def deployments(
    manager: ManagerDep, history: Annotated[int, Query(ge=0, le=1000)] = 50
) -> DeploymentsState:
    """The routing table, the MLflow aliases and the history of changes."""
    return await anyio.to_thread.run_sync(manager.state, history)


@router.post("/deployments", response_model=ControlResult, status_code=201)
async def deploy(
    body: DeployRequest, manager: ManagerDep, actor: ActorHeader = "api"
) -> ControlResult:
    """The one call: resolve ``model_uri`` in the registry, download, verify (sha256,
    scikit-learn version), load, smoke-test, then swap the new table in."""
    return await manager.deploy(
        body.model_uri, variant=body.variant, weight=body.weight, shadow=body.shadow, actor=actor
    )


@router.patch("/deployments/{variant}", response_model=ControlResult)
async def set_weight(
    variant: VariantPath, body: WeightRequest, manager: ManagerDep, actor: ActorHeader = "api"
) -> ControlResult:
    """Give a variant a new share of the live traffic; the others share the rest."""
    return await manager.set_weight(variant, body.weight, actor=actor)


@router.delete("/deployments/{variant}", response_model=ControlResult)
async def remove(
    variant: VariantPath, manager: ManagerDep, actor: ActorHeader = "api"
) -> ControlResult:
    """Take a variant out of the table (its champion/challenger alias is deleted)."""
    return await manager.remove(variant, actor=actor)


@router.post("/promote", response_model=ControlResult)
async def promote(
    manager: ManagerDep, body: PromoteRequest | None = None, actor: ActorHeader = "api"
) -> ControlResult:
    """The challenger (or the named variant) becomes champion with all the traffic; the
    MLflow alias ``champion`` moves to its version."""
    return await manager.promote((body or PromoteRequest()).variant, actor=actor)


@router.post("/rollback", response_model=ControlResult)
async def rollback(manager: ManagerDep, actor: ActorHeader = "api") -> ControlResult:
    """Restore the table before the last change, and the MLflow aliases with it."""
    return await manager.rollback(actor=actor)
