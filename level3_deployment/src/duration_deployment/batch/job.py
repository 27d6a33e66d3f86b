"""A batch scoring job: one registered model version, one or more TLC months, one engine.

Order of work, so that a bad argument fails before anything is written: resolve the model
version in the registry and download it (digest and scikit-learn version checked, as the
router does), resolve every month (bundled, cached or downloaded) and check its columns, make
the output's staging folder; then score month by month, publishing each when it is complete.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from duration_core import (
    MODEL_NAME,
    DurationCoreError,
    TripBatches,
    open_trips,
)
from duration_core.datasets import TripMonth
from duration_core.trip_batches import DEFAULT_BATCH_ROWS
from duration_deployment.batch import output
from duration_deployment.batch.base import MonthCounts, ScoreError, ScoringEngine, ScoringModel
from duration_deployment.batch.pandas_engine import PandasEngine
from duration_deployment.batch.spark_engine import SparkEngine
from duration_deployment.errors import RouterError
from duration_deployment.registry import Registry
from duration_training.tracking import absolute_sqlite, resolve_tracking_uri

logger = logging.getLogger(__name__)

Engine = Literal["pandas", "spark"]
ENGINES: tuple[Engine, ...] = ("pandas", "spark")
_MODEL_NAME_IN_URI = re.compile(r"^models:/(?P<name>[^/@]{1,256})[/@]")


@dataclass(frozen=True)
class MonthResult(MonthCounts):
    """One published month: its counts, where it is and how long it took (seconds)."""

    month: str = ""
    path: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class ScoreSummary:
    """The job's summary (``--json`` prints :meth:`as_dict`)."""

    model: ScoringModel
    engine: str
    output: Path
    months: list[MonthResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_read(self) -> int:
        return sum(m.rows_read for m in self.months)

    @property
    def rows_written(self) -> int:
        return sum(m.rows_written for m in self.months)

    @property
    def rows_per_second(self) -> float:
        """Rides scored and written per second of the whole job (model loading included)."""
        return self.rows_written / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": {
                "uri": self.model.uri,
                "name": self.model.name,
                "version": self.model.version,
                "run_id": self.model.run_id,
            },
            "engine": self.engine,
            "output": str(self.output),
            "rows_read": self.rows_read,
            "rows_scored": self.rows_written,
            "rows_written": self.rows_written,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "months": [asdict(m) for m in self.months],
        }


@dataclass(frozen=True)
class MonthSource:
    """A month to score, optionally read from a given file instead of the TLC's (benchmarks
    score resampled data as a month)."""

    month: TripMonth
    path: Path | None = None


def resolve_model(model_uri: str, tracking_uri: str | None, cache_dir: Path) -> ScoringModel:
    """Resolve and download ``model_uri`` from the registry (``models:/NAME@ALIAS``,
    ``models:/NAME/VERSION`` or a version number of the ladder's model).

    Raises:
        ScoreError: Not a registry URI, an unknown model, version or alias, a download that
            does not verify, or a registry that is down.
    """
    uri = absolute_sqlite(resolve_tracking_uri(tracking_uri))
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        # Checked before MLflow opens it: opening a missing SQLite store creates it empty.
        raise ScoreError(
            f"--tracking-uri {uri}: no registry there (run duration-pipeline first, or name "
            "the registry with --tracking-uri)"
        )
    match = _MODEL_NAME_IN_URI.match(model_uri.strip())
    try:
        registry = Registry(uri, match["name"] if match else MODEL_NAME, cache_dir)
        version, folder, _, _, _ = registry.fetch(model_uri)
    except RouterError as exc:
        raise ScoreError(f"--model {model_uri}: {exc}") from None
    except Exception as exc:  # MLflow's own, e.g. an unsupported URI scheme
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ScoreError(f"--tracking-uri {uri}: MLflow cannot use it: {first}") from None
    return ScoringModel(
        uri=model_uri,
        name=registry.model_name,
        version=str(version.version),
        run_id=str(version.run_id or ""),
        folder=folder,
    )


def _open_month(
    source: MonthSource, batch_rows: int, data_cache_dir: Path | None, download: bool
) -> TripBatches:
    try:
        return open_trips(
            source.path or source.month,
            batch_rows=batch_rows,
            cache_dir=data_cache_dir,
            download=download,
        )
    except (DurationCoreError, ValueError) as exc:
        raise ScoreError(f"--month {source.month}: {exc}") from None


def make_engine(
    engine: Engine, model: ScoringModel, *, master: str, spark_conf: dict[str, str]
) -> ScoringEngine:
    """The engine named by ``--engine``, with the model loaded."""
    if engine == "pandas":
        return PandasEngine(model)
    if engine == "spark":
        return SparkEngine(model, master=master, conf=spark_conf)
    raise ScoreError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")


def score_months(
    model_uri: str,
    months: Sequence[str | TripMonth | MonthSource],
    out: Path,
    *,
    engine: Engine = "pandas",
    tracking_uri: str | None = None,
    model_cache_dir: Path | None = None,
    data_cache_dir: Path | None = None,
    download: bool = True,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    master: str = "local[*]",
    spark_conf: dict[str, str] | None = None,
) -> ScoreSummary:
    """Score every ride of ``months`` with the registered version ``model_uri`` and write
    them under ``out`` (see :mod:`duration_deployment.batch.output`).

    Args:
        model_uri: ``models:/nyc-taxi-duration@champion``, ``.../3`` or ``3``.
        months: ``green:2021-03`` specs, :class:`TripMonth` or :class:`MonthSource`.
        out: The dataset's root folder (created).
        engine: ``pandas`` (in process, record batches) or ``spark``.
        tracking_uri: The MLflow registry; None for ``$MLFLOW_TRACKING_URI`` or
            ``sqlite:///mlflow.db``.
        model_cache_dir: Where the model is downloaded; None for a temporary folder.
        data_cache_dir: The TLC download cache; None for the core library's default.
        download: Whether months neither bundled nor cached may be downloaded.
        batch_rows: Rows per record batch (pandas engine).
        master, spark_conf: The Spark master URL and extra Spark settings (spark engine).

    Raises:
        ScoreError: A bad model URI, month, output folder or engine, a month with no ride
            left to score, or an engine failure; months published before it stay complete.
    """
    started = time.perf_counter()
    if engine not in ENGINES:
        raise ScoreError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if not months:
        raise ScoreError("--month: give at least one month, e.g. green:2021-03")
    if not str(out).strip():
        raise ScoreError("--out: give a folder")
    sources = [_month_source(m) for m in months]
    named = [str(source.month) for source in sources]
    repeated = sorted({m for m in named if named.count(m) > 1})
    if repeated:
        raise ScoreError(f"--month {repeated[0]} is given twice")
    with tempfile.TemporaryDirectory(prefix="duration-score-model-") as scratch:
        model = resolve_model(model_uri, tracking_uri, model_cache_dir or Path(scratch))
        logger.info("model %s: %s v%s (run %s)", model_uri, model.name, model.version, model.run_id)
        trips = [_open_month(s, batch_rows, data_cache_dir, download) for s in sources]
        try:
            staging = output.make_staging(out)
        except output.OutputError as exc:
            raise ScoreError(str(exc)) from None
        try:
            runner = make_engine(engine, model, master=master, spark_conf=spark_conf or {})
            results: list[MonthResult] = []
            try:
                for source, month_trips in zip(sources, trips, strict=True):
                    try:
                        results.append(
                            _score_one(runner, month_trips, source.month, model, staging, out)
                        )
                    except ScoreError as exc:
                        raise ScoreError(str(exc), published=results) from None
            finally:
                runner.close()
        finally:
            output.remove_staging(staging)
    return ScoreSummary(
        model=model,
        engine=engine,
        output=out,
        months=results,
        seconds=time.perf_counter() - started,
    )


def _month_source(month: str | TripMonth | MonthSource) -> MonthSource:
    if isinstance(month, MonthSource):
        return month
    if isinstance(month, TripMonth):
        return MonthSource(month)
    try:
        return MonthSource(TripMonth.parse(month))
    except DurationCoreError as exc:
        raise ScoreError(f"--month {month!r}: {exc}") from None


def _score_one(
    runner: ScoringEngine,
    trips: TripBatches,
    month: TripMonth,
    model: ScoringModel,
    staging: Path,
    out: Path,
) -> MonthResult:
    started = time.perf_counter()
    folder = staging / f"{month.service}-{month.year}-{month.month:02d}"
    logger.info("%s: scoring %s (%s rows) with the %s engine", month, trips.path.name,
                f"{trips.rows:,}", runner.name)  # fmt: skip
    try:
        counts = runner.score(trips, month, model, folder)
    except (DurationCoreError, OSError) as exc:  # the data (a bad value, a corrupt file), a disk
        reason = str(exc) if not isinstance(exc, OSError) else f"{exc.strerror or exc}"
        raise ScoreError(f"--month {month}: {reason}; nothing of it was written") from None
    if counts.rows_kept == 0:
        raise ScoreError(
            f"--month {month}: no ride is left after the course's "
            f"{trips.min_duration:g}-{trips.max_duration:g} minute filter "
            f"({counts.rows_read:,} rows read); nothing was written"
        )
    if counts.rows_written == 0:
        raise ScoreError(
            f"--month {month}: none of its {counts.rows_kept:,} rides has inputs the model "
            "accepts (zones 1-265, distance 0-500 miles); nothing was written"
        )
    try:
        target = output.publish(folder, out, month)
    except output.OutputError as exc:
        raise ScoreError(str(exc)) from None
    seconds = time.perf_counter() - started
    logger.info("%s: %s rides written to %s in %.1f s", month, f"{counts.rows_written:,}",
                target, seconds)  # fmt: skip
    return MonthResult(**asdict(counts), month=str(month), path=str(target), seconds=seconds)
