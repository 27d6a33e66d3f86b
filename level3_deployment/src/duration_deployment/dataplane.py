"""Routed predictions: pick a variant per ride, predict, fall back to the champion, copy the
rides to the shadows, log every prediction and count it.

The web layer (:mod:`duration_deployment.api.routes.predictions`) only hands rides in and
answers come out; everything a prediction does happens here (the shape of SeldonIO/MLServer's
``handlers/dataplane.py``).

Errors: :class:`~duration_deployment.errors.NoModelDeployedError` (no live variant, 503),
:class:`~duration_deployment.errors.UnknownVariantError` (``X-Model-Variant`` names no live
variant, 409), :class:`~duration_deployment.errors.PredictionFailedError` (the variant and
the champion behind it both failed, 503).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

import anyio
import anyio.to_thread

from duration_deployment.errors import (
    NoModelDeployedError,
    PredictionFailedError,
    UnknownVariantError,
)
from duration_deployment.manager import DeploymentManager
from duration_deployment.metrics import RouterMetrics
from duration_deployment.prediction_log import PredictionLog
from duration_deployment.routing import CHAMPION, VARIANT_HEADER, RoutingTable, Variant
from duration_deployment.schemas import RoutedBatch, RoutedPrediction
from duration_service.model_state import predict_minutes
from duration_service.schemas import Ride


@dataclass(frozen=True)
class Outcome:
    """What one variant made of some rides in one call.

    Attributes:
        minutes: Predicted durations in the rides' order; None where it failed.
        latency_ms: Time of the call, milliseconds.
        error: Why some rides failed (the first reason), None when none did.
    """

    minutes: list[float | None]
    latency_ms: float
    error: str | None


def pick(table: RoutingTable, ride_id: str | None, forced: str | None) -> Variant:
    """The live variant that answers a ride: the traffic split's, or the forced one.

    Raises:
        NoModelDeployedError: No live variant.
        UnknownVariantError: ``forced`` names no live variant.
    """
    if not table.live:
        raise NoModelDeployedError("no model is deployed: POST /deployments first")
    if forced is None:
        return table.choose(ride_id)
    variant = table.get(forced)
    if variant is None or variant.shadow:
        live = ", ".join(v.name for v in table.live)
        raise UnknownVariantError(
            f"{VARIANT_HEADER}: no live variant named {forced!r} (live: {live})"
        )
    return variant


def fallback_for(table: RoutingTable, failed: Variant, error: str | None = None) -> Variant:
    """The variant that answers for ``failed``: the champion (the first live variant when
    there is none).

    Raises:
        PredictionFailedError: ``failed`` is that variant: nothing is left to answer.
    """
    fallback = table.get(CHAMPION) or table.live[0]
    if fallback is failed:
        reason = f": {error}" if error is not None else ""
        raise PredictionFailedError(
            f"{failed.name} v{failed.model.version} failed to predict{reason}"
        )
    return fallback


class DataPlane:
    """Routed single-ride and batch predictions over the manager's routing table.

    Args:
        manager: Owns the table, the models' micro-batchers and the guardrails.
        log: Where every prediction (answered, failed or shadow) is recorded.
        metrics: The router's metrics.
    """

    def __init__(
        self, manager: DeploymentManager, log: PredictionLog, metrics: RouterMetrics
    ) -> None:
        self.manager = manager
        self.log = log
        self.metrics = metrics
        # One batch prediction thread at a time (level 1's rule): batches queue, not thrash.
        self.batch_limiter = anyio.CapacityLimiter(1)
        self._shadow_tasks: set[asyncio.Task[None]] = set()

    # -- the two calls --------------------------------------------------------------------

    async def predict(
        self, ride: Ride, forced: str | None = None, route: str = "/predict"
    ) -> RoutedPrediction:
        """Predict one ride (minutes) with the variant the split (or ``forced``) picks; a
        failing variant is replaced by the champion. ``route`` labels the metrics."""
        table = self.manager.table
        variant = pick(table, ride.ride_id, forced)
        chosen = forced is not None  # logged: the A/B test leaves forced rides out
        request_id = uuid.uuid4().hex
        record = ride.record()
        outcome = await self._predict_one(variant, record)
        if outcome.error is not None:
            self._log(request_id, [ride], variant, outcome, forced=chosen)
            self._account(variant, outcome)
            variant = fallback_for(table, variant, outcome.error)
            outcome = await self._predict_one(variant, record)
            if outcome.error is not None:
                self._log(request_id, [ride], variant, outcome, forced=chosen)
                self._account(variant, outcome)
                raise PredictionFailedError(
                    f"{variant.name} v{variant.model.version} failed to predict: {outcome.error}"
                )
        minutes = cast(float, outcome.minutes[0])  # no error: a finite prediction
        self._log(request_id, [ride], variant, outcome, forced=chosen)
        self._account(variant, outcome)
        self.metrics.observe_predictions(route, (minutes,))
        self._spawn_shadows(table, [ride], request_id)
        return RoutedPrediction(
            duration=minutes,
            variant=variant.name,
            model_version=variant.model.version,
            ride_id=ride.ride_id,
        )

    async def predict_batch(
        self, rides: Sequence[Ride], forced: str | None = None, route: str = "/predict/batch"
    ) -> RoutedBatch:
        """Predict each ride (minutes), each with its own variant, as one batch per variant;
        rides a variant failed on go to the champion. The answer keeps the request's order;
        ``route`` labels the metrics."""
        table = self.manager.table
        picked = [pick(table, r.ride_id, forced) for r in rides]
        chosen = forced is not None
        request_id = uuid.uuid4().hex
        answers: list[tuple[Variant, float, float] | None] = [None] * len(rides)
        retry: list[int] = []
        for variant in {id(v): v for v in picked}.values():
            index = [i for i, v in enumerate(picked) if v is variant]
            outcome = await self._predict_group(variant, [rides[i] for i in index])
            self._account(variant, outcome)
            for i, value in zip(index, outcome.minutes, strict=True):
                if value is None:
                    self.log.record(
                        self._row(request_id, rides[i], variant, None, outcome.latency_ms,
                                  outcome.error, forced=chosen)
                    )  # fmt: skip
                    retry.append(i)
                else:
                    answers[i] = (variant, value, outcome.latency_ms)
        if retry:
            for i in retry:
                fallback = fallback_for(table, picked[i])
            outcome = await self._predict_group(fallback, [rides[i] for i in retry])
            self._account(fallback, outcome)
            if outcome.error is not None:
                raise PredictionFailedError(
                    f"{fallback.name} v{fallback.model.version} failed to predict: {outcome.error}"
                )
            for i, value in zip(retry, outcome.minutes, strict=True):
                answers[i] = (fallback, cast(float, value), outcome.latency_ms)  # no error
        done = [a for a in answers if a is not None]
        self.log.record_many(
            self._row(request_id, ride, variant, value, latency_ms, None, forced=chosen)
            for ride, (variant, value, latency_ms) in zip(rides, done, strict=True)
        )
        self.metrics.observe_predictions(route, [a[1] for a in done])
        self._spawn_shadows(table, rides, request_id)
        return RoutedBatch(
            predictions=[
                RoutedPrediction(
                    duration=value,
                    variant=variant.name,
                    model_version=variant.model.version,
                    ride_id=ride.ride_id,
                )
                for ride, (variant, value, _) in zip(rides, done, strict=True)
            ],
            count=len(rides),
        )

    async def aclose(self, timeout: float = 5.0) -> None:
        """Let shadow copies in flight finish (at most ``timeout`` seconds)."""
        tasks = list(self._shadow_tasks)
        if tasks:
            with suppress(Exception):
                await asyncio.wait(tasks, timeout=timeout)

    # -- predicting -----------------------------------------------------------------------

    async def _predict_one(self, variant: Variant, record: dict[str, Any]) -> Outcome:
        """One ride through the variant's micro-batcher (concurrent rides share a call)."""
        start = time.perf_counter()
        minutes: float | None
        try:
            minutes = await self.manager.batcher(variant.model).predict(record)
            error = (
                None
                if minutes is not None and math.isfinite(minutes)
                else f"prediction {minutes!r}"
            )
        except Exception as exc:  # a model that fails on some input: counted, not a 500
            minutes, error = None, f"{type(exc).__name__}: {exc}"[:500]
        if error is not None:
            minutes = None
        return Outcome([minutes], (time.perf_counter() - start) * 1000, error)

    async def _predict_group(self, variant: Variant, rides: Sequence[Ride]) -> Outcome:
        """Rides as one batch, in a worker thread (one batch at a time)."""
        start = time.perf_counter()
        records = [r.record() for r in rides]
        try:
            minutes = await anyio.to_thread.run_sync(
                predict_minutes, variant.model, records, limiter=self.batch_limiter
            )
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:500]
            return Outcome([None] * len(rides), (time.perf_counter() - start) * 1000, reason)
        latency_ms = (time.perf_counter() - start) * 1000
        out: list[float | None] = [m if math.isfinite(m) else None for m in minutes]
        error = None if all(m is not None for m in out) else "prediction not finite"
        return Outcome(out, latency_ms, error)

    # -- shadows ----------------------------------------------------------------------------

    def _spawn_shadows(self, table: RoutingTable, rides: Sequence[Ride], request_id: str) -> None:
        """Start one task per shadow variant; each predicts and logs after the answer."""
        for variant in table.shadows:
            task = asyncio.get_running_loop().create_task(
                self._shadow_copy(variant, list(rides), request_id)
            )
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow_copy(self, variant: Variant, rides: list[Ride], request_id: str) -> None:
        if len(rides) == 1:
            outcome = await self._predict_one(variant, rides[0].record())
        else:  # a batch is predicted as a batch, off the event loop
            outcome = await self._predict_group(variant, rides)
        self._log(request_id, rides, variant, outcome, shadow=True)
        self._account(variant, outcome, shadow=True)

    # -- logging and counting ---------------------------------------------------------------

    def _log(
        self,
        request_id: str,
        rides: Sequence[Ride],
        variant: Variant,
        outcome: Outcome,
        *,
        forced: bool = False,
        shadow: bool = False,
    ) -> None:
        """Log each ride with what ``variant`` predicted for it (the error where it failed)."""
        self.log.record_many(
            self._row(request_id, ride, variant, value, outcome.latency_ms,
                      None if value is not None else outcome.error, shadow=shadow, forced=forced)
            for ride, value in zip(rides, outcome.minutes, strict=True)
        )  # fmt: skip

    def _account(self, variant: Variant, outcome: Outcome, *, shadow: bool = False) -> None:
        """Metrics and guardrails of one variant's call."""
        minutes = outcome.minutes
        self.metrics.observe_variant(
            variant.name, variant.model.version, minutes, outcome.latency_ms, shadow=shadow
        )
        # A batch's time grows with its size, and a shadow's copy waits behind the answers:
        # only single live rides feed the latency guardrail (every ride feeds the error rate).
        timed = outcome.latency_ms if len(minutes) == 1 and not shadow else None
        for value in minutes:
            self.manager.observe(variant, error=value is None, latency_ms=timed)

    @staticmethod
    def _row(
        request_id: str,
        ride: Ride,
        variant: Variant,
        minutes: float | None,
        latency_ms: float,
        error: str | None,
        *,
        shadow: bool = False,
        forced: bool = False,
    ) -> dict[str, Any]:
        """One row of the ``predictions`` table."""
        return {
            "at": time.time(),
            "request_id": request_id,
            "ride_id": ride.ride_id,
            "variant": variant.name,
            "model_version": variant.model.version,
            "shadow": shadow,
            "forced": forced,
            "pu_location_id": ride.PULocationID,
            "do_location_id": ride.DOLocationID,
            "trip_distance": ride.trip_distance,
            "prediction": minutes,
            "latency_ms": latency_ms,
            "error": error,
        }
