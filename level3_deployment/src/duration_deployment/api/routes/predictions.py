"""``POST /predict`` and ``POST /predict/batch``: routed trip durations (minutes), each with
the variant and model version that answered.

No ``from __future__ import annotations`` here: FastAPI must see the batch model class that
:func:`build_router` makes at run time, not its name as a string.
"""

from fastapi import APIRouter

from duration_deployment.api.deps import DataPlaneDep, VariantHeader
from duration_deployment.api.responses import PREDICTION_ERRORS
from duration_deployment.schemas import RoutedBatch, RoutedPrediction
from duration_service.schemas import Ride, batch_request_model


def build_router(max_batch_size: int) -> APIRouter:
    """The prediction routes, with batches capped at ``max_batch_size`` rides."""
    router = APIRouter(tags=["predict"])
    batch_model = batch_request_model(max_batch_size)

    @router.post("/predict", response_model=RoutedPrediction, responses=PREDICTION_ERRORS)
    async def predict(
        ride: Ride, dataplane: DataPlaneDep, forced: VariantHeader = None
    ) -> RoutedPrediction:
        """Predict the duration (minutes) of one ride with the variant the traffic split (or
        ``X-Model-Variant``) picks; a failing non-champion variant is replaced by the champion."""
        return await dataplane.predict(ride, forced)

    @router.post("/predict/batch", response_model=RoutedBatch, responses=PREDICTION_ERRORS)
    async def predict_batch(
        batch: batch_model,  # type: ignore[valid-type]  # a class made at run time
        dataplane: DataPlaneDep,
        forced: VariantHeader = None,
    ) -> RoutedBatch:
        """Predict each ride (minutes), each with its own variant; the answer keeps the order."""
        rides: list[Ride] = batch.rides  # type: ignore[attr-defined]  # the run-time class has it
        return await dataplane.predict_batch(rides, forced)

    return router
