"""``POST /predict`` and ``POST /predict/batch``: predicted trip durations in minutes.

No ``from __future__ import annotations`` here: FastAPI must see the batch model class that
:func:`build_router` makes at run time, not its name as a string.
"""

from typing import Any

import anyio.to_thread
from fastapi import APIRouter

from duration_service.api.deps import (
    BatcherDep,
    BatchLimiterDep,
    MetricsDep,
    ModelDep,
)
from duration_service.model_state import predict_minutes
from duration_service.schemas import (
    BatchPrediction,
    ErrorResponse,
    Prediction,
    Ride,
    batch_request_model,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorResponse,
        "description": "a field is missing, of the wrong type or out of range",
    },
    400: {"model": ErrorResponse, "description": "the body is not valid JSON"},
    413: {"model": ErrorResponse, "description": "the body is larger than max_body_bytes"},
    415: {"model": ErrorResponse, "description": "the body is not sent as application/json"},
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


BATCH_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    422: {
        "model": ErrorResponse,
        "description": "no rides, more than max_batch_size rides, or a ride with a bad field "
        "(located as rides[i].field; the first 100 problems are listed)",
    },
}


def build_router(max_batch_size: int) -> APIRouter:
    """The prediction routes, with batches capped at ``max_batch_size`` rides."""
    router = APIRouter(tags=["predict"])
    batch_model = batch_request_model(max_batch_size)

    @router.post("/predict", response_model=Prediction, responses=ERRORS)
    async def predict(
        ride: Ride, model: ModelDep, batcher: BatcherDep, metrics: MetricsDep
    ) -> Prediction:
        """Predict the duration (minutes) of one ride from its zones and distance."""
        minutes = await batcher.predict(ride.record())
        metrics.observe_predictions("/predict", (minutes,))
        return Prediction(duration=minutes, model_version=model.version, ride_id=ride.ride_id)

    @router.post("/predict/batch", response_model=BatchPrediction, responses=BATCH_ERRORS)
    async def predict_batch(
        batch: batch_model,  # type: ignore[valid-type]  # a class made at run time
        model: ModelDep,
        metrics: MetricsDep,
        limiter: BatchLimiterDep,
    ) -> BatchPrediction:
        """Predict the duration (minutes) of each ride; the answer keeps the request's order."""
        # A large batch takes milliseconds of CPU: run it off the event loop so single-ride
        # requests keep flowing meanwhile, one batch at a time (first come, first served:
        # under the GIL, concurrent batches would all finish late together).
        rides: list[Ride] = batch.rides  # type: ignore[attr-defined]  # the run-time class has it
        records = [r.record() for r in rides]
        minutes = await anyio.to_thread.run_sync(predict_minutes, model, records, limiter=limiter)
        metrics.observe_predictions("/predict/batch", minutes)
        version = model.version
        return BatchPrediction(
            predictions=[
                Prediction(duration=m, model_version=version, ride_id=r.ride_id)
                for m, r in zip(minutes, rides, strict=True)
            ],
            model_version=version,
            count=len(minutes),
        )

    return router
