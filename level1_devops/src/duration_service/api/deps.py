"""Dependencies handed to routes, as ``Annotated`` aliases.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a thread pool,
a thread hop per dependency per request that costs more than the prediction itself.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import Depends, HTTPException, Request

from duration_core import LoadedModel
from duration_service.config import Settings
from duration_service.metrics import ServiceMetrics
from duration_service.model_state import ModelState, PredictionBatcher
from duration_service.protocols.scoring import Scorer


async def get_state(request: Request) -> ModelState:
    """The model state the app loaded at start-up."""
    state: ModelState = request.app.state.model_state
    return state


async def get_model(request: Request) -> LoadedModel:
    """The loaded model.

    Raises:
        HTTPException: 503 with the reason the model is not loaded.
    """
    state: ModelState = request.app.state.model_state
    if state.model is None:
        raise HTTPException(status_code=503, detail=f"model not loaded: {state.error}")
    return state.model


async def get_batcher(request: Request) -> PredictionBatcher:
    """The micro-batcher of single-ride predictions (exists only when a model is loaded)."""
    batcher: PredictionBatcher = request.app.state.batcher
    return batcher


async def get_batch_limiter(request: Request) -> anyio.CapacityLimiter:
    """One batch prediction thread at a time, per process (created in the lifespan)."""
    limiter: anyio.CapacityLimiter = request.app.state.batch_limiter
    return limiter


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> ServiceMetrics:
    """The app's Prometheus metrics."""
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


StateDep = Annotated[ModelState, Depends(get_state)]
ModelDep = Annotated[LoadedModel, Depends(get_model)]
BatcherDep = Annotated[PredictionBatcher, Depends(get_batcher)]
BatchLimiterDep = Annotated[anyio.CapacityLimiter, Depends(get_batch_limiter)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]


async def get_scorer(request: Request) -> Scorer:
    """What the protocol routes score with (level 1's model, level 3's router; lifespan)."""
    scorer: Scorer = request.app.state.scorer
    return scorer


ScorerDep = Annotated[Scorer, Depends(get_scorer)]
