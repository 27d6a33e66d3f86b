"""The Spark engine: the same job as a Spark application, for months (or years) that outgrow one
machine. ``--master local[*]`` runs it on this machine's cores; any Spark master URL
(``spark://host:7077``, ``yarn``, ``k8s://...``) runs it on a cluster.

The month is read by Spark from the same parquet file, and the core library's rules are
restated as Spark expressions: the course's filter (``duration_core.trips``: a missing
timestamp, a negative duration, under 1 or over 60 minutes, no finite distance, in that order),
the ride's position among the kept rides (from Parquet's row index, so the ride id is the same
as the pandas engine's), the API's input rule, then the registered model through
``mlflow.pyfunc.spark_udf``. Both engines write the same rows and predictions (tested).

Needs ``pyspark`` (the ``spark`` extra) and Java 17 or newer. On a
cluster the executors need this project's packages and the model's requirements installed,
and the month's file must be on storage they can read.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from duration_core import DurationCoreError, InvalidValueError, TripBatches
from duration_core.datasets import TripMonth
from duration_deployment.batch.base import MonthCounts, ScoreError, ScoringModel
from duration_deployment.rides import ride_ids
from duration_service.schemas import MAX_TRIP_DISTANCE_MILES, MAX_ZONE, MIN_ZONE

logger = logging.getLogger(__name__)

#: Rows per chunk of the file when numbering kept rides (one window partition, so one task,
#: each: a month of 3M rides is numbered by 30 tasks).
POSITION_CHUNK_ROWS = 100_000
#: Settings every session gets (``--spark-conf`` may override them).
DEFAULT_CONF = {
    "spark.app.name": "duration-score",
    "spark.sql.session.timeZone": "UTC",  # timestamps as the TLC wrote them (no zone)
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
}


def java_problem() -> str | None:
    """Why Spark cannot start here (no Java found), or None."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return None
    if shutil.which("java"):
        return None
    return (
        "the spark engine needs Java 17 or newer: install it (Debian/Ubuntu: apt-get install "
        "openjdk-17-jre-headless) or set JAVA_HOME"
    )


class SparkEngine:
    """A Spark session and the model's ``spark_udf``, for the job's months.

    Args:
        model: The downloaded model version.
        master: The Spark master URL.
        conf: Extra Spark settings (``--spark-conf key=value``).

    Raises:
        ScoreError: pyspark is not installed, Java is missing, or Spark does not start.
    """

    name = "spark"

    def __init__(self, model: ScoringModel, *, master: str, conf: dict[str, str]) -> None:
        try:
            import mlflow.pyfunc
            from pyspark.sql import SparkSession
        except ImportError:
            raise ScoreError(
                "the spark engine needs pyspark: install the spark extra "
                "(pip install -e 'level3_deployment[spark]' from a clone, or pyspark>=4.0)"
            ) from None
        problem = java_problem()
        if problem is not None:
            raise ScoreError(problem)
        if master.startswith("local"):
            # Python workers must run this interpreter (its packages), not whatever python3 is
            # first on PATH; PySpark reads that only from the environment (SparkContext's
            # pythonExec). A value the user exported wins.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        settings = {**DEFAULT_CONF, **conf}
        builder = SparkSession.builder.master(master)
        for key, value in settings.items():
            builder = builder.config(key, value)
        try:
            self.spark: Any = builder.getOrCreate()
        except Exception as exc:  # Py4J / PySpark raise their own kinds
            raise ScoreError(f"--master {master}: Spark did not start: {exc}") from None
        self.spark.sparkContext.setLogLevel("ERROR")
        try:
            self.predict = mlflow.pyfunc.spark_udf(
                self.spark, str(model.folder), result_type="double", env_manager="local"
            )
        except Exception as exc:
            self.close()
            raise ScoreError(f"--model {model.uri}: MLflow cannot load it: {exc}") from None

    def score(
        self, trips: TripBatches, month: TripMonth, model: ScoringModel, folder: Path
    ) -> MonthCounts:
        """Score the month into ``folder`` (Spark's part files).

        Raises:
            ScoreError: A path Hadoop cannot take, a file the core library would refuse (a
                zone that is not a whole number, timestamps that are not timestamps, one of
                two with a time zone), or Spark failing on the data (one line, no stack).
        """
        for path in (trips.path, folder):
            if ":" in str(path):
                raise ScoreError(
                    f"{path}: the spark engine cannot use a path with ':' (Hadoop reads it as "
                    "a URI scheme); rename it or use --engine pandas"
                )
        try:
            return self._score(trips, month, model, folder)
        except (ScoreError, DurationCoreError):
            raise
        except Exception as exc:  # Py4J, AnalysisException, PythonException: Spark's own kinds
            raise ScoreError(
                f"--month {month}: {trips.path.name}: Spark failed: {_first_line(exc)}"
            ) from None

    def _score(
        self, trips: TripBatches, month: TripMonth, model: ScoringModel, folder: Path
    ) -> MonthCounts:
        from pyspark.sql import functions as F  # noqa: N812  # Spark's own convention

        flagged = self._flagged(trips)
        chunk = F.floor(F.col("_row") / POSITION_CHUNK_ROWS).alias("_chunk")
        stats = (
            flagged.groupBy(chunk)
            .agg(
                F.count(F.lit(1)).alias("read"),
                F.sum(F.col("_kept").cast("long")).alias("kept"),
                F.sum((F.col("_kept") & F.col("_accepted")).cast("long")).alias("accepted"),
                F.min(F.when(~F.col("_whole_zones"), F.col("_row"))).alias("bad_zone_row"),
            )
            .collect()
        )
        bad = [int(r["bad_zone_row"]) for r in stats if r["bad_zone_row"] is not None]
        if bad:
            raise InvalidValueError(
                f"{trips.path}: row {min(bad):,}: a location ID is not a whole-number TLC zone ID"
            )
        rows = sorted((int(r["_chunk"]), int(r["read"]), int(r["kept"] or 0),
                       int(r["accepted"] or 0)) for r in stats)  # fmt: skip
        read = sum(r[1] for r in rows)
        kept = sum(r[2] for r in rows)
        accepted = sum(r[3] for r in rows)
        if accepted:
            self._write(flagged, rows, trips, month, model, folder)
            written = _rows_in(folder)
        else:
            written = 0
        return MonthCounts(
            rows_read=read, rows_kept=kept, skipped_inputs=kept - accepted, rows_written=written
        )

    def _flagged(self, trips: TripBatches) -> Any:
        """The file's rides in canonical columns, with ``_row`` (file row index), ``_minutes``
        (the duration), ``_kept`` (passes the course's filter) and ``_accepted`` (inputs the
        API accepts)."""
        from pyspark.sql import functions as F  # noqa: N812

        # Exactly the file the core library resolved: Hadoop would read [, {, * and ? as a glob.
        raw = self.spark.read.parquet(_glob_escaped(str(trips.path)))
        df = raw.select(
            F.col("_metadata.row_index").alias("_row"),
            *(F.col(f"`{source}`").alias(name) for name, source in trips.columns.items()),
        )
        _check_types(df, trips.path)
        zones = ("PULocationID", "DOLocationID")
        whole = F.lit(True)
        for zone in zones:  # a float zone must be a whole number, as duration_core requires
            value = F.col(zone).cast("double")
            whole = whole & (F.col(zone).isNull() | F.isnan(value) | (value == F.floor(value)))
        df = df.select(
            "_row",
            F.col("pickup_datetime").cast("timestamp_ntz").alias("pickup_datetime"),
            F.col("dropoff_datetime").cast("timestamp_ntz").alias("dropoff_datetime"),
            *(F.when(~F.isnan(F.col(z).cast("double")), F.col(z).cast("long")).alias(z)
              for z in zones),
            F.col("trip_distance").cast("double").alias("trip_distance"),
            whole.alias("_whole_zones"),
        )  # fmt: skip
        seconds = F.unix_micros(F.col("dropoff_datetime").cast("timestamp")) - F.unix_micros(
            F.col("pickup_datetime").cast("timestamp")
        )
        minutes = seconds / 1e6 / 60.0
        distance = F.col("trip_distance")
        finite = distance.isNotNull() & ~F.isnan(distance) & (F.abs(distance) != float("inf"))
        kept = (
            minutes.isNotNull()
            & (minutes >= trips.min_duration)
            & (minutes <= trips.max_duration)
            & finite
        )
        accepted = (
            F.col("PULocationID").between(MIN_ZONE, MAX_ZONE)
            & F.col("DOLocationID").between(MIN_ZONE, MAX_ZONE)
            & distance.between(0, MAX_TRIP_DISTANCE_MILES)
        )
        return df.select(
            "*",
            minutes.alias("_minutes"),
            F.coalesce(kept, F.lit(False)).alias("_kept"),
            F.coalesce(accepted, F.lit(False)).alias("_accepted"),
        )

    def _write(
        self,
        flagged: Any,
        chunks: list[tuple[int, int, int, int]],
        trips: TripBatches,
        month: TripMonth,
        model: ScoringModel,
        folder: Path,
    ) -> None:
        from pyspark.sql import Window
        from pyspark.sql import functions as F  # noqa: N812
        from pyspark.sql.pandas.functions import pandas_udf

        offsets, total = [], 0
        for chunk, _, kept, _ in chunks:
            offsets.append((chunk, total))
            total += kept
        offset_frame = self.spark.createDataFrame(offsets, "_chunk long, _offset long")
        source = str(month)

        def ride_id_texts(
            pickup: pd.Series, dropoff: pd.Series, pu: pd.Series, do: pd.Series,
            distance: pd.Series, position: pd.Series,
        ) -> pd.Series:  # fmt: skip
            frame = pd.DataFrame({
                "pickup_datetime": pickup, "dropoff_datetime": dropoff,
                "PULocationID": pu, "DOLocationID": do, "trip_distance": distance,
            })  # fmt: skip
            return pd.Series(ride_ids(frame, source, position.tolist()))

        # pyspark's overloads stop at five Series; the type hints above are what it reads.
        make_udf: Any = pandas_udf
        ride_id = make_udf("string")(ride_id_texts)

        numbered = (
            flagged.filter("_kept")
            .withColumn("_chunk", F.floor(F.col("_row") / POSITION_CHUNK_ROWS))
            .join(F.broadcast(offset_frame), "_chunk")
            .withColumn(
                "_position",
                F.col("_offset")
                + F.row_number().over(Window.partitionBy("_chunk").orderBy("_row"))
                - 1,
            )
        )
        scored = (
            numbered.withColumn(
                "ride_id",
                ride_id(
                    "pickup_datetime",
                    "dropoff_datetime",
                    "PULocationID",
                    "DOLocationID",
                    "trip_distance",
                    "_position",
                ),
            )
            .filter("_accepted")
            .withColumn(
                "predicted_duration",
                self.predict(F.struct("PULocationID", "DOLocationID", "trip_distance")),
            )
        )
        scored.select(
            "ride_id",
            "pickup_datetime",
            "PULocationID",
            "DOLocationID",
            "trip_distance",
            F.col("_minutes").alias("actual_duration"),
            "predicted_duration",
            (F.col("_minutes") - F.col("predicted_duration")).alias("diff"),
            F.lit(model.name).alias("model_name"),
            F.lit(model.version).alias("model_version"),
            F.lit(model.run_id).alias("run_id"),
        ).write.mode("errorifexists").parquet(str(folder))
        for extra in [*folder.glob(".*.crc"), *folder.glob("_SUCCESS")]:
            extra.unlink()  # Hadoop's checksums and marker: not data
        logger.info("%s: Spark wrote its scored rides into %s", month, folder)

    def close(self) -> None:
        """Stop the Spark session."""
        spark = getattr(self, "spark", None)
        if spark is not None:
            spark.stop()
            self.spark = None


def _check_types(df: Any, path: Path) -> None:
    """Refuse what :func:`duration_core.load_trips` refuses about column types.

    Raises:
        InvalidValueError: A timestamp column is not timestamps, only one of the two has a
            time zone, or a zone or distance column is not numeric.
    """
    from pyspark.sql.types import NumericType, TimestampNTZType, TimestampType

    types = {field.name: field.dataType for field in df.schema.fields}
    aware = []
    for name in ("pickup_datetime", "dropoff_datetime"):
        if not isinstance(types[name], TimestampType | TimestampNTZType):
            raise InvalidValueError(
                f"{path}: column {name!r} holds {types[name].simpleString()}, not timestamps"
            )
        if isinstance(types[name], TimestampType):
            aware.append(name)
    if len(aware) == 1:
        raise InvalidValueError(
            f"{path}: {aware[0]!r} has a time zone and the other timestamp has none; "
            "durations between them would be wrong"
        )
    for name in ("PULocationID", "DOLocationID", "trip_distance"):
        if not isinstance(types[name], NumericType):
            raise InvalidValueError(
                f"{path}: column {name!r} holds {types[name].simpleString()}, not numbers"
            )


def _glob_escaped(path: str) -> str:
    """``path`` with Hadoop's glob characters escaped, so it names exactly one file."""
    return "".join(f"\\{c}" if c in "[]{}*?\\" else c for c in path)


def _first_line(exc: BaseException) -> str:
    """The first meaningful line of a Spark or Py4J error, without its stack trace."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "JVM stacktrace", "Traceback")):
            return line[:300]
    return type(exc).__name__


def _rows_in(folder: Path) -> int:
    """Rows in the parquet files of ``folder`` (from their footers)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(folder.glob("*.parquet")))
