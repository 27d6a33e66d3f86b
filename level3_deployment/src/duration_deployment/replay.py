"""Replay a real TLC month through the router, then feed back the actual durations.

The way to run an A/B test on real data in a workshop or a test: every ride of the month (after
the course's 1-60 minute filter, and with inputs the API accepts) is sent at a fixed rate, with a
ride id that is a stable hash of the row, so the same ride always gets the same id (and, while
the weights stay the same, the same variant). The actual durations then go to ``/feedback``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from typing import Any

import pandas as pd

from duration_core import DurationCoreError, load_trips
from duration_deployment.client import RouterClient
from duration_deployment.rides import accepted_inputs, ride_ids

logger = logging.getLogger(__name__)

#: Rides per ``/feedback`` call.
FEEDBACK_CHUNK = 5_000
#: Seed of the ride sample that ``limit`` takes.
SAMPLE_SEED = 0


class ReplayError(Exception):
    """The month cannot be read, or holds no ride the router would accept."""


def load_replay(
    month: str, limit: int | None = None, part: tuple[int, int] | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rides of ``month`` the router accepts, with ``ride_id`` and ``duration`` (minutes),
    in pickup order; with ``limit``, a random sample (seed :data:`SAMPLE_SEED`) of that many;
    with ``part`` ``(k, n)``, the k-th of n consecutive, equal parts of them (1-based), so a
    month can be sent piece by piece with every ride once.

    Returns:
        (rides, counts): counts of rows read, kept by the duration filter, skipped for inputs
        the API refuses (missing zone, distance outside 0-500 miles), and sent.

    Raises:
        ReplayError: The month cannot be read or has no usable ride.
    """
    try:
        data = load_trips(month)
    except DurationCoreError as exc:
        raise ReplayError(str(exc)) from None
    rides = data.rides.reset_index(drop=True)
    rides["ride_id"] = ride_ids(rides, data.source)
    usable = accepted_inputs(rides)
    kept = rides[usable]
    if limit is not None and limit < len(kept):
        # A sample spread over the month, not its first rows: TLC files are not in time order
        # (the first 5,000 rides of 2021-01 alone have a PULocationID PSI of 0.76 against the
        # whole month).
        kept = kept.sample(n=limit, random_state=SAMPLE_SEED)
    kept = kept.sort_values("pickup_datetime", kind="stable")  # sent as they happened
    if part is not None:
        k, n = part
        if not 1 <= k <= n:
            raise ReplayError(f"part {k}/{n}: expected 1 <= K <= N")
        size = -(-len(kept) // n)
        kept = kept.iloc[(k - 1) * size : k * size]
    if kept.empty:
        raise ReplayError(f"{month}: no ride the router accepts")
    counts = {
        "rows_read": data.report.rows_read,
        "rows_kept_by_filter": data.report.rows_kept,
        "skipped_bad_inputs": int((~usable).sum()),
        "rides": len(kept),
    }
    return kept.reset_index(drop=True), counts


def replay_month(
    client: RouterClient,
    month: str,
    *,
    rate: float = 200.0,
    limit: int | None = None,
    batch: int | None = None,
    feedback: bool = True,
    feedback_lag: int | None = None,
    part: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Send the rides of ``month`` to ``/predict/batch`` at ``rate`` rides per second, then post
    their actual durations to ``/feedback``.

    Args:
        client: A :class:`~duration_deployment.client.RouterClient` (feedback needs its token).
        month: ``green:2021-03`` or a TLC parquet file.
        rate: Rides per second (the pace is kept over the whole replay, not per request).
        limit: Only a random sample of ``limit`` rides (the same on every run).
        batch: Rides per request; default ``rate / 10`` (ten requests a second), at least 1.
        feedback: Post the actual durations.
        feedback_lag: Post them while the replay goes on, each ride's once ``feedback_lag``
            more rides have been sent (as in production, where a duration is known when the
            ride ends); default None: all of them after the last ride.
        part: ``(k, n)``: only the k-th of n consecutive parts (see :func:`load_replay`).

    Returns:
        Counts: rides sent, answered per variant, seconds, achieved rate, feedback matched.
    """
    if rate <= 0 or not math.isfinite(rate):
        raise ReplayError(f"rate {rate!r} must be a positive number of rides per second")
    if feedback_lag is not None and feedback_lag < 0:
        raise ReplayError(f"feedback lag {feedback_lag!r} must be 0 or more rides")
    rides, counts = load_replay(month, limit, part)
    size = batch or max(1, int(rate / 10))
    fed = 0  # rides whose duration was posted
    matched = unknown = 0
    columns = ["PULocationID", "DOLocationID", "trip_distance", "ride_id"]
    records = [
        {"PULocationID": int(pu), "DOLocationID": int(do), "trip_distance": float(d), "ride_id": r}
        for pu, do, d, r in rides[columns].itertuples(index=False, name=None)
    ]
    by_variant: Counter[str] = Counter()
    started = time.perf_counter()
    for sent in range(0, len(records), size):
        due = started + sent / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        answer = client.call("POST", "/predict/batch", json={"rides": records[sent : sent + size]})
        by_variant.update(f"{p['variant']} v{p['model_version']}" for p in answer["predictions"])
        due_feedback = sent + size - (feedback_lag or 0)
        if feedback and feedback_lag is not None and due_feedback - fed >= size:
            posted = _post_feedback(client, rides.iloc[fed:due_feedback])
            matched += posted["feedback_matched"]
            unknown += posted["feedback_unknown"]
            fed = due_feedback
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "month": month,
        **counts,
        "answered": dict(sorted(by_variant.items())),
        "seconds": round(seconds, 2),
        "rides_per_second": round(len(records) / seconds, 1) if seconds > 0 else None,
    }
    if feedback:
        posted = _post_feedback(client, rides.iloc[fed:])
        result["feedback_matched"] = matched + posted["feedback_matched"]
        result["feedback_unknown"] = unknown + posted["feedback_unknown"]
    return result


def feedback_month(client: RouterClient, month: str, *, limit: int | None = None) -> dict[str, Any]:
    """The batch join: read ``month``, compute the ride ids as :func:`replay_month` did and post
    the actual durations; ride ids the router never predicted are counted, not errors."""
    rides, counts = load_replay(month, limit)
    return {"month": month, "rides": counts["rides"], **_post_feedback(client, rides)}


def _post_feedback(client: RouterClient, rides: pd.DataFrame) -> dict[str, int]:
    matched = unknown = 0
    pairs = list(zip(rides["ride_id"].tolist(), rides["duration"].tolist(), strict=True))
    for start in range(0, len(pairs), FEEDBACK_CHUNK):
        chunk = [
            {"ride_id": r, "duration": float(d)} for r, d in pairs[start : start + FEEDBACK_CHUNK]
        ]
        answer = client.call("POST", "/feedback", json={"actuals": chunk})
        matched += answer["matched"]
        unknown += answer["unknown"]
    return {"feedback_matched": matched, "feedback_unknown": unknown}
