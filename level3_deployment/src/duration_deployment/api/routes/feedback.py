"""``POST /feedback``: actual trip durations (minutes), joined to the logged predictions."""

import time

import anyio.to_thread
from fastapi import APIRouter, Depends

from duration_deployment.api.deps import LogDep, MetricsDep, require_token
from duration_deployment.api.responses import CONTROL_ERRORS
from duration_deployment.schemas import FeedbackRequest, FeedbackResult

router = APIRouter(
    tags=["control"], dependencies=[Depends(require_token)], responses=CONTROL_ERRORS
)


@router.post("/feedback", response_model=FeedbackResult)
async def post_feedback(body: FeedbackRequest, log: LogDep, metrics: MetricsDep) -> FeedbackResult:
    """Actual durations (minutes) by ride id; unknown ride ids are counted, not errors."""
    actuals = {a.ride_id: a.duration for a in body.actuals}
    matched, unknown = await anyio.to_thread.run_sync(log.add_feedback, actuals)
    metrics.observe_feedback(matched, time.time())
    return FeedbackResult(
        received=len(body.actuals),
        matched=matched,
        unknown=len(unknown),
        unknown_examples=unknown[:10],
    )
