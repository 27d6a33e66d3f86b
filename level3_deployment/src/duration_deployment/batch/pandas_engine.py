"""The pandas engine: in process, one parquet record batch at a time, so memory stays bounded
by the batch size whatever the month's size.

Each batch: the core library's normalisation and course filter (:mod:`duration_core.
trip_batches`), level 3's ride id, the rides whose inputs the API accepts, the registered
model's MLflow pyfunc ``predict``, one row group appended to the month's parquet file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from duration_core import RIDE_FIELDS, TripBatches
from duration_core.datasets import TripMonth
from duration_deployment.batch import output
from duration_deployment.batch.base import MonthCounts, ScoreError, ScoringModel
from duration_deployment.rides import accepted_inputs, ride_ids

logger = logging.getLogger(__name__)


class PandasEngine:
    """Scores with the model's MLflow pyfunc, loaded once.

    Raises:
        ScoreError: The model folder cannot be loaded by MLflow.
    """

    name = "pandas"

    def __init__(self, model: ScoringModel) -> None:
        try:
            self.pyfunc = mlflow.pyfunc.load_model(str(model.folder))
        except Exception as exc:  # MLflow raises many kinds for a model it cannot load
            raise ScoreError(f"--model {model.uri}: MLflow cannot load it: {exc}") from None

    def score(
        self, trips: TripBatches, month: TripMonth, model: ScoringModel, folder: Path
    ) -> MonthCounts:
        """Score the month into ``folder/part-00000.parquet`` (one row group per batch)."""
        folder.mkdir(parents=True)
        read = kept = skipped = written = 0
        with pq.ParquetWriter(folder / "part-00000.parquet", output.SCHEMA) as writer:
            for batch in trips:
                read += batch.report.rows_read
                kept += batch.report.rows_kept
                rides = batch.rides
                if rides.empty:
                    continue
                first = batch.first_position
                rides = rides.assign(
                    ride_id=ride_ids(rides, str(month), range(first, first + len(rides)))
                )
                accepted = accepted_inputs(rides)
                skipped += int((~accepted).sum())
                rides = rides[accepted]
                if rides.empty:
                    continue
                writer.write_table(self._scored(rides, model))
                written += len(rides)
                logger.info("%s: %s of %s rows read, %s rides scored", month,
                            f"{read:,}", f"{trips.rows:,}", f"{written:,}")  # fmt: skip
        return MonthCounts(
            rows_read=read, rows_kept=kept, skipped_inputs=skipped, rows_written=written
        )

    def _scored(self, rides: pd.DataFrame, model: ScoringModel) -> pa.Table:
        inputs = pd.DataFrame(
            {
                "PULocationID": rides["PULocationID"].to_numpy("int64"),
                "DOLocationID": rides["DOLocationID"].to_numpy("int64"),
                "trip_distance": rides["trip_distance"].to_numpy("float64"),
            }
        )[list(RIDE_FIELDS)]
        predicted = np.asarray(self.pyfunc.predict(inputs), dtype="float64").reshape(-1)
        actual = rides["duration"].to_numpy("float64")
        columns = {
            "ride_id": rides["ride_id"].to_numpy(object),
            "pickup_datetime": rides["pickup_datetime"].to_numpy("datetime64[us]"),
            "PULocationID": inputs["PULocationID"].to_numpy(),
            "DOLocationID": inputs["DOLocationID"].to_numpy(),
            "trip_distance": inputs["trip_distance"].to_numpy(),
            "actual_duration": actual,
            "predicted_duration": predicted,
            "diff": actual - predicted,
            "model_name": [model.name] * len(rides),
            "model_version": [model.version] * len(rides),
            "run_id": [model.run_id] * len(rides),
        }
        return pa.Table.from_pydict(columns, schema=output.SCHEMA)

    def close(self) -> None:
        """Nothing to release (the model is garbage-collected)."""
