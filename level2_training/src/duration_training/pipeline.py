"""The level-2 training pipeline: ingest, validate, train, evaluate, register, decide.

Each step is a plain function; :func:`run_pipeline` runs them in order inside one MLflow parent
run (the candidates are nested runs), times them in a :class:`~duration_training.steps.StepTable`
and stops at the first failure: the run is marked ``FAILED`` with the reason, nothing is
registered and no alias moves.
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import mlflow.artifacts
import mlflow.sklearn
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from duration_core import (
    DurationCoreError,
    Metrics,
    TripData,
    TripMonth,
    build_pipeline,
    evaluate,
    load_trips,
)
from duration_core.artifact import library_versions
from duration_core.features import RIDE_FIELDS
from duration_core.profile import build_profile
from duration_training import plots
from duration_training.config import PipelineConfig
from duration_training.errors import DataValidationError, PipelineError
from duration_training.packaging import SIGNATURE, code_folder, load_pipeline, model_requirements
from duration_training.steps import StepTable
from duration_training.tracking import (
    MODEL_SHA256_TAG,
    alias_version,
    git_commit,
    model_digest,
    tracking,
)
from duration_training.validation import ValidationReport, validate

logger = logging.getLogger(__name__)

#: Run artifact holding the training data's :class:`~duration_core.ReferenceProfile`.
PROFILE_ARTIFACT = "reference_profile.json"
STEPS = ("ingest", "validate", "train", "evaluate", "register", "decide")
SEED = 0  # every seeded estimator in duration_core.model uses 0
#: Types outside skops' default trust list that the candidate pipelines contain.
TRUSTED_TYPES = [
    "duration_core.features.RideFeatures",
    "duration_core.encoding.RideVectorizer",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.KFold",
]
Source = str | os.PathLike[str] | TripMonth


@dataclass
class Candidate:
    """One trained candidate: its pipeline, validation metrics and nested MLflow run."""

    name: str
    pipeline: Pipeline
    metrics: Metrics
    run_id: str
    fit_seconds: float


@dataclass
class PipelineResult:
    """What a run did: the steps, the data, the candidates, the version and the aliases."""

    run_id: str
    steps: StepTable
    tracking_uri: str
    train: list[TripData] = field(default_factory=list)
    val: TripData | None = None
    validation: ValidationReport | None = None
    candidates: list[Candidate] = field(default_factory=list)
    best: Candidate | None = None
    version: str | None = None
    aliases_moved: list[str] = field(default_factory=list)
    champion_version: str | None = None
    champion_rmse: float | None = None
    decision: str = ""
    aliases_before: dict[str, str | None] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """One machine-readable line: run id, version, aliases moved, metrics."""
        return {
            "run_id": self.run_id,
            "tracking_uri": self.tracking_uri,
            "registered_version": self.version,
            "aliases_moved": self.aliases_moved,
            "decision": self.decision,
            "best_model": self.best.name if self.best else None,
            "metrics": {c.name: c.metrics.as_dict(prefix="val_") for c in self.candidates},
            "champion_version": self.champion_version,
            "steps": self.steps.as_dicts(),
        }


def ingest(
    train: Sequence[Source], val: Source, *, cache_dir: str | None, download: bool
) -> tuple[list[TripData], TripData]:
    """Read the training months and the validation month (bundled, cached or downloaded).

    Raises:
        PipelineError: A month is missing, corrupt, lacks a column or has no rides left; the
            message names the file and the reason (step ``ingest``).
    """
    try:
        train_data = [load_trips(s, cache_dir=cache_dir, download=download) for s in train]
        val_data = load_trips(val, cache_dir=cache_dir, download=download)
    except DurationCoreError as exc:
        raise PipelineError(str(exc), step="ingest") from None
    return train_data, val_data


def check_data(train: list[TripData], val: TripData, config: PipelineConfig) -> ValidationReport:
    """Run the data checks; log the report to the active run.

    Raises:
        DataValidationError: A check failed; the message names each file and failed check.
    """
    report = validate(train, val, config)
    mlflow.log_dict(report.as_dict(), "validation/report.json")
    if not report.passed:
        raise DataValidationError(f"data validation failed: {report.summary()}", report=report)
    return report


def train_candidates(rides: pd.DataFrame, val: TripData, config: PipelineConfig) -> list[Candidate]:
    """Fit each candidate on ``rides`` as a nested run; score it on ``val`` with plots."""
    candidates = []
    y_val = val.rides["duration"].to_numpy()
    for name in config.candidates:
        with mlflow.start_run(run_name=name, nested=True) as run:
            pipeline = build_pipeline(name)
            regressor = pipeline.named_steps["regressor"]
            mlflow.log_params({"model": name, **_plain(regressor.get_params())})
            with _timer() as fit:
                pipeline.fit(rides, rides["duration"].to_numpy())
            predicted = pipeline.predict(val.rides)
            metrics = evaluate(y_val, predicted)
            mlflow.log_metrics({**metrics.as_dict(prefix="val_"), "fit_seconds": fit.seconds})
            title = f"{name}: validation {val.source}"
            for figure, path in (
                (
                    plots.predicted_vs_actual(y_val, predicted, title),
                    "plots/predicted_vs_actual.png",
                ),
                (
                    plots.residuals_by_distance(
                        val.rides["trip_distance"].to_numpy(), y_val, predicted, title
                    ),
                    "plots/residuals_by_distance.png",
                ),
            ):
                mlflow.log_figure(figure, path)
                plt.close(figure)
            logger.info("candidate %s: val RMSE %.4f min", name, metrics.rmse)
            candidates.append(Candidate(name, pipeline, metrics, run.info.run_id, fit.seconds))
    return candidates


def register(best: Candidate, example: pd.DataFrame, config: PipelineConfig) -> str:
    """Log the best pipeline with a signature and input example, register it, return its version.

    The version is self-contained (:mod:`duration_training.packaging`): the library's code is
    in it and its ``requirements.txt`` holds only packages from PyPI. The caller then moves the
    alias ``challenger`` to it (:func:`_run_steps`), so that a failure in between still knows
    which version to roll back.
    """
    with tempfile.TemporaryDirectory() as code:
        info = mlflow.sklearn.log_model(
            best.pipeline,
            name="model",
            signature=SIGNATURE,
            input_example=example,
            # MLflow writes scikit-learn models with skops, which loads only types it is told
            # to trust: the project's own pipeline steps and the scikit-learn internals they hold.
            skops_trusted_types=TRUSTED_TYPES,
            code_paths=[str(code_folder(Path(code)))],
            pip_requirements=model_requirements(),
        )
    registered = mlflow.register_model(info.model_uri, config.model_name)
    number = str(registered.version)
    # Digest of the files as stored, read back from the store: what a deployment downloads
    # must be byte for byte what was registered (level 3 checks it).
    with tempfile.TemporaryDirectory() as folder:
        stored = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{config.model_name}/{number}", dst_path=folder
        )
        digest = model_digest(stored)
    MlflowClient().set_model_version_tag(config.model_name, number, MODEL_SHA256_TAG, digest)
    return number


def decide(
    new_version: str, new_rmse: float, val: TripData, config: PipelineConfig
) -> tuple[bool, str | None, float | None, str]:
    """Move ``champion`` to ``new_version`` if there is none, or if the new RMSE beats the
    current champion's, re-scored on the same validation month, by ``champion_margin``.

    Returns:
        (promoted, previous champion version, its RMSE on ``val``, a sentence saying why).
    """
    client = MlflowClient()
    name = config.model_name
    current = alias_version(client, name, "champion")
    champion_rmse = None
    if current is None:
        promoted, why = True, "no champion yet"
    else:
        champion = load_pipeline(f"models:/{name}@champion")
        champion_rmse = evaluate(val.rides["duration"].to_numpy(), champion.predict(val.rides)).rmse
        bar = champion_rmse * (1 - config.champion_margin)
        promoted = new_rmse < bar and config.offline_promotion
        why = (
            f"RMSE {new_rmse:.4f} vs champion v{current}'s {champion_rmse:.4f} on {val.source}: "
            + (
                f"better by more than {config.champion_margin * 100:g}%"
                if new_rmse < bar
                else f"not better by {config.champion_margin * 100:g}% (needed < {bar:.4f})"
            )
            + ("" if config.offline_promotion else "; promotion left to the A/B test")
        )
    if promoted:
        client.set_registered_model_alias(name, "champion", new_version)
    decision = "promoted to champion" if promoted else f"champion stays v{current}"
    tags = {
        "decision": decision,
        "val_rmse": repr(new_rmse),
        "validation_data": val.source,
        "champion_before": current or "none",
        "champion_val_rmse": "" if champion_rmse is None else repr(champion_rmse),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, new_version, key, value)
    client.update_model_version(name, new_version, description=f"{decision}: {why}")
    return promoted, current, champion_rmse, why


def run_pipeline(
    train: Sequence[Source],
    val: Source,
    *,
    config: PipelineConfig | None = None,
    tracking_uri: str | None = None,
    cache_dir: str | None = None,
    download: bool = True,
) -> PipelineResult:
    """Run every step; see the module docstring.

    Args:
        train: Training months or files (``green:2021-01`` or paths); several are concatenated.
        val: The validation month or file.
        config: Thresholds and names; default :class:`PipelineConfig` (environment).
        tracking_uri: MLflow tracking URI; default ``$MLFLOW_TRACKING_URI`` or
            ``sqlite:///mlflow.db``.
        cache_dir: Cache folder for downloaded months.
        download: Whether months that are neither bundled nor cached may be downloaded.

    Raises:
        TrackingUnavailableError: The tracking server cannot be reached (before any run).
        PipelineError: A step failed (``DataValidationError`` for a failed data check); the
            run is marked FAILED with the reason and nothing is registered.
    """
    config = config or PipelineConfig()
    with tracking(tracking_uri or config.tracking_uri, config.experiment) as (uri, experiment_id):
        mlflow.set_experiment(experiment_id=experiment_id)  # the nested runs go there too
        steps = StepTable.of(*STEPS)
        try:
            with mlflow.start_run(experiment_id=experiment_id, run_name="pipeline") as parent:
                result = PipelineResult(run_id=parent.info.run_id, steps=steps, tracking_uri=uri)
                try:
                    _run_steps(result, list(train), val, config, cache_dir, download)
                except BaseException as exc:  # Ctrl-C too: never leave a half-registered version
                    _roll_back(result, config)
                    _fail(exc, steps)
                mlflow.log_dict({"steps": steps.as_dicts()}, "steps.json")
                mlflow.log_text(steps.render(), "steps.txt")
        except MlflowException as exc:
            # The store failed, possibly while closing a run that had already failed: report
            # the pipeline's own error if there is one, else the store's.
            if isinstance(exc.__context__, PipelineError):
                raise exc.__context__ from None
            error = PipelineError(f"the tracking store {uri} failed: {exc.message}", step="track")
            error.steps = steps  # type: ignore[attr-defined]  # any exception carries the step table
            raise error from None
    return result


def _roll_back(result: PipelineResult, config: PipelineConfig) -> None:
    """Undo a registration whose run failed: delete the new version, restore the aliases."""
    if result.version is None:
        return
    name = config.model_name
    client = MlflowClient()
    try:
        client.delete_model_version(name, result.version)  # its aliases go with it
        for alias, previous in result.aliases_before.items():
            if previous is not None:
                client.set_registered_model_alias(name, alias, previous)
    except Exception:
        logger.exception(
            "could not roll back %s v%s: check its aliases in the registry", name, result.version
        )
        return
    logger.warning("rolled back: deleted %s v%s and restored its aliases", name, result.version)
    result.version = None
    result.aliases_moved.clear()


def _fail(exc: BaseException, steps: StepTable) -> None:
    """Mark the active run FAILED (KILLED for Ctrl-C) with the step and the reason, then raise:
    the same KeyboardInterrupt, or a PipelineError naming the step."""
    failed = next((s.name for s in steps.steps if s.outcome == "failed"), "?")
    step = getattr(exc, "step", failed)
    interrupted = isinstance(exc, KeyboardInterrupt)
    reason = "interrupted" if interrupted else (str(exc) or type(exc).__name__)
    try:
        mlflow.set_tags({"failed_step": step, "failure_reason": reason[:5000]})
        mlflow.log_dict({"steps": steps.as_dicts()}, "steps.json")
        mlflow.log_text(steps.render(), "steps.txt")
        mlflow.end_run(status="KILLED" if interrupted else "FAILED")
    except Exception:  # the store itself may be what failed; the error below says what
        logger.warning("could not record the failure in the tracking store", exc_info=True)
    if interrupted:
        raise exc
    if isinstance(exc, PipelineError):
        exc.steps = steps  # type: ignore[attr-defined]  # the CLI prints the table
        raise exc
    error = PipelineError(f"{type(exc).__name__}: {reason}", step=step)
    error.steps = steps  # type: ignore[attr-defined]  # any exception carries the step table
    raise error from exc


def _run_steps(
    result: PipelineResult,
    train: list[Source],
    val: Source,
    config: PipelineConfig,
    cache_dir: str | None,
    download: bool,
) -> None:
    steps = result.steps
    mlflow.set_tags({"git_commit": git_commit(), "pipeline": "duration-pipeline"})
    mlflow.log_params(
        {
            "train": ",".join(str(s) for s in train),
            "val": str(val),
            "candidates": ",".join(config.candidates),
            "seed": SEED,
            "min_rides": config.min_rides,
            "min_kept_share": config.min_kept_share,
            "champion_margin": config.champion_margin,
        }
    )
    with steps.run("ingest") as step:
        result.train, result.val = ingest(train, val, cache_dir=cache_dir, download=download)
        rows = sum(t.report.rows_kept for t in result.train)
        step.note = f"{rows:,} train rides, {result.val.report.rows_kept:,} val rides"
        _log_data(result.train, result.val)
    with steps.run("validate") as step:
        result.validation = check_data(result.train, result.val, config)
        step.note = f"{len(result.validation.checks)} checks passed"
    rides = pd.concat([t.rides for t in result.train], ignore_index=True)
    with steps.run("train") as step:
        result.candidates = train_candidates(rides, result.val, config)
        step.note = ", ".join(c.name for c in result.candidates)
    with steps.run("evaluate") as step:
        result.best = min(result.candidates, key=lambda c: c.metrics.rmse)
        best = result.best
        mlflow.log_metrics(
            {f"{c.name}_val_rmse": c.metrics.rmse for c in result.candidates}
            | {"best_val_rmse": best.metrics.rmse}
        )
        mlflow.set_tag("best_model", best.name)
        step.note = f"best {best.name}: RMSE {best.metrics.rmse:.4f} min"
    with steps.run("register") as step:
        # The services' types (packaging.SIGNATURE): integer zones, a double distance.
        example = (
            rides[list(RIDE_FIELDS)]
            .head(5)
            .astype({"PULocationID": "int64", "DOLocationID": "int64", "trip_distance": "float64"})
        )
        client = MlflowClient()
        result.aliases_before = {
            alias: alias_version(client, config.model_name, alias)
            for alias in ("challenger", "champion")
        }
        # The training reference for drift monitoring (level 3): input and prediction
        # distributions and the PU_DO pairs seen, beside the model in the run's artifacts.
        profile = build_profile(
            rides, best.pipeline.predict(rides), source=",".join(t.source for t in result.train)
        )
        mlflow.log_dict(profile.to_dict(), PROFILE_ARTIFACT)
        result.version = register(best, example, config)
        client.set_registered_model_alias(config.model_name, "challenger", result.version)
        result.aliases_moved.append("challenger")
        step.note = f"{config.model_name} v{result.version} @challenger"
    with steps.run("decide") as step:
        promoted, previous, champion_rmse, why = decide(
            result.version, best.metrics.rmse, result.val, config
        )
        result.champion_version = result.version if promoted else previous
        result.champion_rmse = champion_rmse
        result.decision = why
        if promoted:
            result.aliases_moved.append("champion")
        step.note = (
            ("champion -> v" + result.version) if promoted else f"champion stays v{previous}"
        )


def _log_data(train: list[TripData], val: TripData) -> None:
    """Data fingerprints and counts, library versions: enough to reproduce the run."""
    for role, data in [*(("train", t) for t in train), ("val", val)]:
        prefix = f"{role}.{data.path.name}"
        mlflow.set_tag(f"{prefix}.sha256", data.sha256)
        mlflow.log_metrics(
            {
                f"{prefix}.rows_read": data.report.rows_read,
                f"{prefix}.rows_kept": data.report.rows_kept,
            }
        )
    mlflow.log_dict({"train": [t.describe() for t in train], "val": val.describe()}, "data.json")
    mlflow.set_tags({f"version.{k}": v for k, v in library_versions().items()})
    mlflow.set_tag("platform", platform.platform())


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """Estimator parameters MLflow can log: scalars as they are, anything else as text."""
    return {
        k: v if isinstance(v, int | float | str | bool) or v is None else repr(v)
        for k, v in params.items()
    }


class _timer:  # noqa: N801 (used as a context manager, like a function)
    """``with _timer() as t: ...``, then ``t.seconds``."""

    def __enter__(self) -> _timer:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
