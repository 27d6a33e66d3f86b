"""The one call a protocol route makes, :meth:`Scorer.score`, and level 1's scorer.

Level 1 scores with its one loaded model (:class:`ModelScorer`); level 3's router implements
the same :class:`Scorer` over its traffic split, so the protocol routes are the same code in
both services.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio
import anyio.to_thread

from duration_service.metrics import ServiceMetrics
from duration_service.model_state import ModelState, PredictionBatcher, predict_minutes
from duration_service.protocols.rides import ProtocolError
from duration_service.schemas import Ride


@dataclass(frozen=True)
class Scored:
    """Predictions of some rides, in their order.

    Attributes:
        minutes: Predicted trip durations, minutes.
        model_versions: The model version that answered each ride.
        variants: The router's variant that answered each ride; None in level 1 (one model).
    """

    minutes: list[float]
    model_versions: list[str]
    variants: list[str] | None = None


class Scorer(Protocol):
    """What the protocol routes need of a service."""

    @property
    def model_name(self) -> str:
        """The served model's name (``nyc-taxi-duration``)."""

    def versions(self) -> list[str]:
        """The model versions being served, empty when there is none."""

    def unavailable(self) -> str | None:
        """Why nothing can be scored now (None when something can)."""

    async def score(
        self,
        rides: Sequence[Ride],
        *,
        version: str | None,
        route: str,
        headers: Mapping[str, str],
    ) -> Scored:
        """Predict ``rides``; ``version`` asks for that model version (None: the service's
        choice); ``route`` labels the metrics; ``headers`` are the request's (a scorer that
        routes reads them: the router's ``X-Model-Variant``).

        Raises:
            ProtocolError: 404 when ``version`` is not served, 503 when nothing is.
        """


class ModelScorer:
    """Level 1's scorer: the one model the service loaded.

    Args:
        model_name: The name the protocols give the model.
        state: The loaded model (or why there is none).
        batcher: The micro-batcher of single-ride predictions (None without a model).
        limiter: One batch prediction thread at a time (``/predict/batch``'s limiter).
        metrics: The service's metrics.
    """

    def __init__(
        self,
        model_name: str,
        state: ModelState,
        batcher: PredictionBatcher | None,
        limiter: anyio.CapacityLimiter,
        metrics: ServiceMetrics,
    ) -> None:
        self.model_name = model_name
        self.state = state
        self.batcher = batcher
        self.limiter = limiter
        self.metrics = metrics

    def versions(self) -> list[str]:
        """The loaded model's version (first 12 hex digits of its sha256), or none."""
        return [self.state.model.version] if self.state.model is not None else []

    def unavailable(self) -> str | None:
        """The reason the model is not loaded, None when it is."""
        return None if self.state.model is not None else f"model not loaded: {self.state.error}"

    async def score(
        self,
        rides: Sequence[Ride],
        *,
        version: str | None,
        route: str,
        headers: Mapping[str, str],
    ) -> Scored:
        """Predict with the loaded model: one ride through the micro-batcher (like
        ``/predict``), several in a worker thread (like ``/predict/batch``); ``headers`` are
        not read.

        Raises:
            ProtocolError: 503 without a model, 404 when ``version`` is not the loaded one.
        """
        model = self.state.model
        if model is None or self.batcher is None:
            raise ProtocolError(503, f"model not loaded: {self.state.error}")
        if version is not None and version != model.version:
            raise ProtocolError(
                404,
                f"model {self.model_name!r} has no version {version!r} here "
                f"(serving: {model.version})",
            )
        records = [ride.record() for ride in rides]
        if len(records) == 1:
            minutes = [await self.batcher.predict(records[0])]
        else:
            minutes = await anyio.to_thread.run_sync(
                predict_minutes, model, records, limiter=self.limiter
            )
        self.metrics.observe_predictions(route, minutes)
        return Scored(minutes=minutes, model_versions=[model.version] * len(minutes))
