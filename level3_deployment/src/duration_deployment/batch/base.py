"""What the batch job and its engines share: the error, the model scored with, the counts an
engine reports and the engine's interface."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from duration_core import TripBatches
from duration_core.datasets import TripMonth


class ScoreError(Exception):
    """The job cannot run or finish; the message names the argument, month or folder.

    Attributes:
        published: Months already published before the failure (complete, and kept).
    """

    def __init__(self, message: str, published: list[Any] | None = None) -> None:
        super().__init__(message)
        self.published = list(published or [])


@dataclass(frozen=True)
class ScoringModel:
    """The registered model version a job scores with.

    Attributes:
        uri: The model URI asked for (``models:/nyc-taxi-duration@champion``).
        name, version, run_id: What the registry resolved it to.
        folder: The downloaded, verified MLflow model folder (a temporary folder, gone when
            the job ends, unless the job was given a model cache folder).
    """

    uri: str
    name: str
    version: str
    run_id: str
    folder: Path


@dataclass(frozen=True)
class MonthCounts:
    """What an engine did with one month's rides.

    Attributes:
        rows_read: Rows in the file.
        rows_kept: Rides the course's 1-60 minute filter (and a finite distance) kept.
        skipped_inputs: Kept rides whose inputs the prediction API refuses (a zone outside
            1-265, a distance outside 0-500 miles): not scored.
        rows_written: Rides scored and written.
    """

    rows_read: int
    rows_kept: int
    skipped_inputs: int
    rows_written: int


class ScoringEngine(Protocol):
    """Scores one month into a folder of parquet files with :data:`output.SCHEMA`."""

    name: str

    def score(
        self, trips: TripBatches, month: TripMonth, model: ScoringModel, folder: Path
    ) -> MonthCounts: ...

    def close(self) -> None: ...
