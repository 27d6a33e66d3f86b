"""``POST /predict`` and ``POST /predict/batch``: predicted trip durations in minutes."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, HTTPException

from duration_service.api.deps import (
    BatcherDep,
    BatchLimiterDep,
    MetricsDep,
    ModelDep,
    SettingsDep,
)
from duration_service.model_state import predict_minutes
from duration_service.schemas import BatchPrediction, BatchRequest, ErrorResponse, Prediction, Ride

router = APIRouter(tags=["predict"])

ERRORS = {
    422: {
        "model": ErrorResponse,
        "description": "a field is missing, of the wrong type or out of range",
    },
    400: {"model": ErrorResponse, "description": "the body is not valid JSON"},
    503: {
        "model": ErrorResponse,
        "description": "no model is loaded",
        "content": {
            "application/json": {
                "example": {
                    "detail": "model not loaded: model file not found: models/model.zip",
                    "errors": [],
                }
            }
        },
    },
}


@router.post("/predict", response_model=Prediction, responses=ERRORS)
async def predict(
    ride: Ride, model: ModelDep, batcher: BatcherDep, metrics: MetricsDep
) -> Prediction:
    """Predict the duration (minutes) of one ride from its zones and distance."""
    minutes = await batcher.predict(ride.record())
    metrics.observe_predictions("/predict", (minutes,))
    return Prediction(duration=minutes, model_version=model.version, ride_id=ride.ride_id)


@router.post(
    "/predict/batch",
    response_model=BatchPrediction,
    responses={
        **ERRORS,
        413: {
            "model": ErrorResponse,
            "description": "more rides than max_batch_size, or too large a body",
        },
    },
)
async def predict_batch(
    batch: BatchRequest,
    model: ModelDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    limiter: BatchLimiterDep,
) -> BatchPrediction:
    """Predict the duration (minutes) of each ride; the answer keeps the request's order."""
    count = len(batch.rides)
    if count > settings.max_batch_size:
        raise HTTPException(
            status_code=413,
            detail=f"rides: {count:,} rides exceed the limit of "
            f"{settings.max_batch_size:,} per batch",
        )
    # A large batch takes milliseconds of CPU: run it off the event loop so single-ride
    # requests keep flowing meanwhile, one batch at a time (first come, first served: under
    # the GIL, concurrent batches would all finish late together).
    records = [r.record() for r in batch.rides]
    minutes = await anyio.to_thread.run_sync(predict_minutes, model, records, limiter=limiter)
    metrics.observe_predictions("/predict/batch", minutes)
    version = model.version
    return BatchPrediction(
        predictions=[
            Prediction(duration=m, model_version=version, ride_id=r.ride_id)
            for m, r in zip(minutes, batch.rides, strict=True)
        ],
        model_version=version,
        count=count,
    )
