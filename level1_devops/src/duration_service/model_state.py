"""The served model: loaded once at start-up, or the reason it could not be."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from duration_core import DurationCoreError, LoadedModel, load_model
from duration_service.config import Settings

logger = logging.getLogger(__name__)

#: A real ride (green 2021-01) predicted once at start-up, so a model that loads but cannot
#: predict is reported on /ready instead of failing the first request.
SMOKE_RIDE = {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}


@dataclass(frozen=True)
class ModelState:
    """Either a loaded model or the reason there is none (never both).

    Attributes:
        model: The artifact, when it loaded and passed the smoke prediction.
        error: Why there is no model: shown by ``/ready`` and by the 503 answers.
    """

    model: LoadedModel | None
    error: str | None

    @property
    def ready(self) -> bool:
        """True when predictions can be served."""
        return self.model is not None

    @classmethod
    def load(cls, settings: Settings) -> ModelState:
        """Load ``settings.model_path``; a missing, damaged or incompatible file is an error
        state, not an exception, so the process keeps answering ``/health`` and ``/ready``."""
        try:
            model = load_model(
                settings.model_path,
                expected_sha256=settings.model_sha256,
                allow_version_mismatch=settings.allow_version_mismatch,
            )
            smoke = float(model.pipeline.predict([SMOKE_RIDE])[0])
        except DurationCoreError as exc:
            logger.error("model not loaded: %s", exc)
            return cls(model=None, error=str(exc))
        except Exception as exc:  # a pickle that loads but cannot predict, say
            logger.exception("model not usable")
            return cls(model=None, error=f"{settings.model_path}: model is not usable: {exc}")
        if not math.isfinite(smoke):
            return cls(model=None, error=f"{settings.model_path}: smoke prediction is {smoke}")
        logger.info("serving model %s from %s", model.version, model.path)
        return cls(model=model, error=None)


class Predictor(Protocol):
    """What a prediction needs of a model: its scikit-learn pipeline (level 1's
    :class:`~duration_core.LoadedModel`, level 3's deployed versions)."""

    @property
    def pipeline(self) -> Any:
        """Its ``predict`` takes ride dicts and returns durations in minutes."""


def predict_minutes(model: Predictor, records: Sequence[dict[str, Any]]) -> list[float]:
    """Predicted durations (minutes) as plain Python floats, one per record, in order."""
    minutes: list[float] = np.asarray(
        model.pipeline.predict(list(records)), dtype="float64"
    ).tolist()
    return minutes


class PredictionBatcher:
    """Gathers single-ride predictions that arrive together into one ``pipeline.predict``.

    A pipeline call has a fixed cost of about 1 ms (building the feature frame) whatever
    the number of rides, so under concurrent load one call per request would spend most of the
    time there. Each request's ride joins a pending list; the list is predicted at the end of the
    current event-loop iteration (``loop.call_soon``), or at once when it reaches
    ``max_rides``. No timer: a lone request waits for nothing. The predictions are exactly those
    of one-by-one calls (the pipeline is row-wise).
    """

    def __init__(self, model: Predictor, max_rides: int = 256) -> None:
        self.model = model
        self.max_rides = max_rides
        self._pending: list[tuple[dict[str, Any], asyncio.Future[float]]] = []
        self._scheduled = False

    async def predict(self, record: dict[str, Any]) -> float:
        """The predicted duration of one ride, minutes."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        self._pending.append((record, future))
        if len(self._pending) >= self.max_rides:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            minutes = predict_minutes(self.model, [record for record, _ in batch])
        except Exception:
            # Should not happen after validation; isolate the ride at fault, serve the rest.
            logger.exception(
                "batched prediction failed; predicting %d rides one by one", len(batch)
            )
            for record, future in batch:
                if future.done():
                    continue
                try:
                    future.set_result(predict_minutes(self.model, [record])[0])
                except Exception as exc:
                    future.set_exception(exc)
            return
        for (_, future), value in zip(batch, minutes, strict=True):
            if not future.done():  # the client may have gone away
                future.set_result(value)
