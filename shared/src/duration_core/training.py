"""Training the trip-duration pipeline on TLC months and scoring it on a validation month."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from duration_core.datasets import TripMonth
from duration_core.evaluation import Metrics, evaluate
from duration_core.features import RIDE_FIELDS
from duration_core.model import build_pipeline
from duration_core.profile import ReferenceProfile, build_profile
from duration_core.trips import MAX_DURATION_MINUTES, MIN_DURATION_MINUTES, TripData, load_trips

logger = logging.getLogger(__name__)

Source = str | os.PathLike[str] | TripMonth


@dataclass
class TrainingResult:
    """A fitted pipeline with the data it saw and its scores.

    Attributes:
        pipeline: The fitted pipeline (raw rides in, minutes out).
        model: The regressor's name (``linear``, ``lasso``, ``ridge``).
        train: The training months, as read and filtered.
        val: The validation month, as read and filtered.
        val_metrics: Scores on ``val``.
        timings: Seconds spent per step (``read``, ``fit``, ``profile``, ``evaluate``).
        profile: The reference profile of the training rides and of the fitted pipeline's
            predictions on them, for :func:`duration_core.artifact.save_model` (``profile=``)
            and later drift checks (:func:`duration_core.profile.drift_report`).
    """

    pipeline: Pipeline
    model: str
    params: dict[str, Any]
    train: list[TripData]
    val: TripData
    val_metrics: Metrics
    timings: dict[str, float] = field(default_factory=dict)
    profile: ReferenceProfile | None = None

    @property
    def train_rows(self) -> int:
        """Rides the model was fitted on, after the duration filter."""
        return sum(t.report.rows_kept for t in self.train)

    def metadata(self) -> dict[str, Any]:
        """Provenance for :func:`duration_core.artifact.save_model`."""
        first = self.val.report
        return {
            "model": self.model,
            "params": self.params,
            "ride_fields": list(RIDE_FIELDS),
            "features": list(self.pipeline.named_steps["features"].get_feature_names_out()),
            "target": "duration (minutes) = dropoff - pickup",
            "duration_filter_minutes": [first.min_duration, first.max_duration],
            "train": [t.describe() for t in self.train],
            "val": self.val.describe(),
            "train_rows": self.train_rows,
            "val_rows": self.val.report.rows_kept,
            "metrics": self.val_metrics.as_dict(prefix="val_"),
        }


def train_model(
    train: Source | Sequence[Source],
    val: Source,
    *,
    model: str = "linear",
    params: dict[str, Any] | None = None,
    min_duration: float = MIN_DURATION_MINUTES,
    max_duration: float = MAX_DURATION_MINUTES,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> TrainingResult:
    """Read the months, fit the pipeline on ``train`` and score it on ``val``.

    Args:
        train: One source or several (concatenated): paths, :class:`TripMonth` or specs such
            as ``"green:2021-01"``.
        val: The validation source.
        model: ``linear`` (the course's baseline), ``lasso`` or ``ridge``.
        params: Regressor parameters (e.g. ``{"alpha": 0.1}``).
        min_duration: Shortest kept ride, minutes (course: 1).
        max_duration: Longest kept ride, minutes (course: 60).
        cache_dir: Cache folder for downloaded months.
        download: Whether months that are not bundled or cached may be downloaded.

    Returns:
        The fitted pipeline, the data read, the validation metrics and the reference profile
        of the training rides (:func:`duration_core.profile.build_profile` of the rides and the
        fitted pipeline's predictions on them; save it with
        ``save_model(..., profile=result.profile)``). On the bundled files
        (train green 2021-01, validate green 2021-02, ``linear``): 73,908 and 61,921 rides,
        validation RMSE 7.7587 minutes (course: 7.758715).

    Raises:
        ValueError: Unknown ``model`` or parameter, a training file given twice, or validation
            data with the same bytes as a training file.
        DurationCoreError: Any error of :func:`duration_core.trips.load_trips`.
    """
    sources = [train] if isinstance(train, str | os.PathLike | TripMonth) else list(train)
    if not sources:
        raise ValueError("at least one training source is needed")

    def read(source: str | os.PathLike[str] | TripMonth) -> TripData:
        return load_trips(
            source,
            min_duration=min_duration,
            max_duration=max_duration,
            cache_dir=cache_dir,
            download=download,
        )

    pipeline = build_pipeline(model, **(params or {}))
    timings: dict[str, float] = {}

    start = time.perf_counter()
    train_data = [read(s) for s in sources]
    val_data = read(val)
    timings["read"] = time.perf_counter() - start
    seen: dict[str, Path] = {}
    for data in train_data:
        if data.sha256 in seen:
            raise ValueError(
                f"training file {data.path} is given twice (same bytes as {seen[data.sha256]})"
            )
        seen[data.sha256] = data.path
    if val_data.sha256 in seen:
        raise ValueError(
            f"validation file {val_data.path} is also a training file "
            f"(same bytes as {seen[val_data.sha256]})"
        )
    rides = (
        train_data[0].rides
        if len(train_data) == 1
        else pd.concat([t.rides for t in train_data], ignore_index=True)
    )

    start = time.perf_counter()
    logger.info("fitting %s on %s rides", model, f"{len(rides):,}")
    pipeline.fit(rides, rides["duration"].to_numpy())
    timings["fit"] = time.perf_counter() - start

    start = time.perf_counter()
    profile = build_profile(
        rides,
        pipeline.predict(rides),
        source=" + ".join(t.source for t in train_data),
    )
    timings["profile"] = time.perf_counter() - start

    start = time.perf_counter()
    val_metrics = evaluate(val_data.rides["duration"].to_numpy(), pipeline.predict(val_data.rides))
    timings["evaluate"] = time.perf_counter() - start
    logger.info("validation RMSE %.4f min on %s rides", val_metrics.rmse, f"{val_metrics.n:,}")
    return TrainingResult(
        pipeline=pipeline,
        model=model,
        params=dict(params or {}),
        train=train_data,
        val=val_data,
        val_metrics=val_metrics,
        timings=timings,
        profile=profile,
    )
