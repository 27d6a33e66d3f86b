"""Retraining on production data: the router's labelled rides become TLC-format files (the
latest ``holdout_share`` by answer time is the holdout), level 2's pipeline trains, validates
(its data gate applies) and registers the best candidate as ``challenger``, and the gate asks
that it beat the champion on that holdout and pass level 3's smoke test (plausible durations
for the router's sample rides) before any traffic.

A ride's pickup time is when the router answered it and its drop-off that time plus the
fed-back duration: the pipeline's course filter (1-60 min) and its checks then read the
production rides exactly as they read a TLC month.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from duration_deployment.config import RouterSettings
from duration_deployment.errors import DeploymentError
from duration_deployment.registry import smoke_test
from duration_operations.policy import Gates, RetrainingData
from duration_operations.registry_records import RegistryUnavailableError
from duration_operations.triggers import DRIFT, TriggerResult
from duration_training import (
    PipelineConfig,
    PipelineError,
    TrackingUnavailableError,
    run_pipeline,
)

logger = logging.getLogger(__name__)

GATE_PASSED, GATE_FAILED, PIPELINE_STOPPED, TOO_FEW_RIDES = (
    "gate passed",
    "gate failed",
    "pipeline stopped",
    "too few rides",
)
#: Fewest holdout rides the pipeline is asked to accept (its ``min_rides``).
MIN_HOLDOUT_RIDES = 500


@dataclass(frozen=True)
class ProductionData:
    """The files a retrain used.

    Attributes:
        train: TLC-format parquet of the training part.
        holdout: Same, the latest part.
        train_rows / holdout_rows: Rides in each.
        train_sha256 / holdout_sha256: SHA-256 of each file as written.
        first_id / last_id: Prediction-log ids of the oldest and newest ride used.
        months: Published months added to the training part.
    """

    train: Path
    holdout: Path
    train_rows: int
    holdout_rows: int
    train_sha256: str
    holdout_sha256: str
    first_id: int
    last_id: int
    months: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_file": self.train.name,
            "holdout_file": self.holdout.name,
            "train_rows": self.train_rows,
            "holdout_rows": self.holdout_rows,
            "train_sha256": self.train_sha256,
            "holdout_sha256": self.holdout_sha256,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "months": list(self.months),
        }


@dataclass(frozen=True)
class RetrainResult:
    """What a retrain did.

    Attributes:
        outcome: :data:`GATE_PASSED`, :data:`GATE_FAILED`, :data:`PIPELINE_STOPPED`
            (a step of the pipeline failed, its data gate most often; nothing registered)
            or :data:`TOO_FEW_RIDES`.
        reason: One sentence with the figures.
        version: The registered version (None unless registered).
        run_id: The pipeline's MLflow run (None before it started).
        challenger_rmse / champion_rmse: RMSE on the holdout, minutes.
        improvement: ``1 - challenger_rmse / champion_rmse``.
        data: The files used (None for too few rides).
        steps: The pipeline's step table, as text.
    """

    outcome: str
    reason: str
    version: str | None = None
    run_id: str | None = None
    model: str | None = None
    challenger_rmse: float | None = None
    champion_rmse: float | None = None
    improvement: float | None = None
    data: ProductionData | None = None
    steps: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "version": self.version,
            "run_id": self.run_id,
            "model": self.model,
            "challenger_rmse": self.challenger_rmse,
            "champion_rmse": self.champion_rmse,
            "improvement": self.improvement,
            "data": None if self.data is None else self.data.to_dict(),
            "checks": self.checks,
        }


def labelled_rides(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per ride with an actual: live answers only (not shadow, not forced, not failed),
    the last answer of a ride id that came twice, oldest first by log id."""
    keep = (
        ~frame["shadow"].astype(bool)
        & ~frame["forced"].astype(bool)
        & frame["actual"].notna()
        & frame["prediction"].notna()
    )
    rides = frame.loc[keep].sort_values("id")
    rides = rides.drop_duplicates("ride_id", keep="last") if "ride_id" in rides else rides
    return rides.reset_index(drop=True)


def drift_onset(fired: list[TriggerResult], remembered: int | None) -> int:
    """The prediction-log id after which the drifted traffic starts: the earlier of the
    ``remembered`` onset (:meth:`~duration_operations.ledger.Ledger.drift_onset`) and the
    first drifted window of this reading; 0 when drift did not fire (no lower bound)."""
    for trigger in fired:
        windows = trigger.figures.get("windows") if trigger.trigger == DRIFT else None
        if trigger.fired and windows:
            first = min(int(w["first_id"]) for w in windows)
            return max(0, min(first, remembered or first) - 1)
    return 0


def _tlc_frame(rides: pd.DataFrame) -> pd.DataFrame:
    pickup = pd.to_datetime(rides["at"].to_numpy(), unit="s")
    return pd.DataFrame(
        {
            "lpep_pickup_datetime": pickup,
            "lpep_dropoff_datetime": pickup + pd.to_timedelta(rides["actual"].to_numpy(), unit="m"),
            "PULocationID": rides["PULocationID"].astype("int64").to_numpy(),
            "DOLocationID": rides["DOLocationID"].astype("int64").to_numpy(),
            "trip_distance": rides["trip_distance"].astype("float64").to_numpy(),
        }
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_production_files(
    rides: pd.DataFrame, folder: Path, holdout_share: float, months: tuple[str, ...] = ()
) -> ProductionData:
    """Split :func:`labelled_rides` by time and write both parts as TLC-format parquet.

    Raises:
        ValueError: Fewer than 2 rides.
    """
    if len(rides) < 2:
        raise ValueError(f"{len(rides)} labelled rides: nothing to split")
    folder.mkdir(parents=True, exist_ok=True)
    cut = max(1, min(len(rides) - 1, round(len(rides) * (1 - holdout_share))))
    first, last = int(rides["id"].iloc[0]), int(rides["id"].iloc[-1])
    stem = f"production_{first}-{last}"
    train, holdout = folder / f"{stem}_train.parquet", folder / f"{stem}_holdout.parquet"
    _tlc_frame(rides.iloc[:cut]).to_parquet(train, index=False)
    _tlc_frame(rides.iloc[cut:]).to_parquet(holdout, index=False)
    return ProductionData(
        train=train,
        holdout=holdout,
        train_rows=cut,
        holdout_rows=len(rides) - cut,
        train_sha256=_sha256(train),
        holdout_sha256=_sha256(holdout),
        first_id=first,
        last_id=last,
        months=months,
    )


def retrain(
    rides: pd.DataFrame,
    *,
    data_policy: RetrainingData,
    gates: Gates,
    tracking_uri: str,
    model_name: str,
    folder: Path,
    cache_dir: str | None = None,
) -> RetrainResult:
    """Train on ``rides`` (:func:`labelled_rides`), register, and gate; see the module
    docstring. A version that fails the gate loses the ``challenger`` alias again (the
    aliases are as before) and is kept, tagged, for the record.

    Raises:
        RegistryUnavailableError: The tracking server cannot be reached.
    """
    if len(rides) < data_policy.min_rides:
        return RetrainResult(
            TOO_FEW_RIDES,
            f"{len(rides):,} labelled production rides, the policy needs {data_policy.min_rides:,}",
        )
    rides = rides.iloc[-data_policy.rides :]
    data = write_production_files(
        rides, folder, data_policy.holdout_share, tuple(data_policy.months)
    )
    config = PipelineConfig(
        tracking_uri=tracking_uri,
        model_name=model_name,
        experiment=model_name,
        candidates=data_policy.candidates,
        min_rides=MIN_HOLDOUT_RIDES,
        champion_margin=gates.min_improvement,
        offline_promotion=False,
    )
    try:
        result = run_pipeline(
            [data.train, *data_policy.months],
            data.holdout,
            config=config,
            tracking_uri=tracking_uri,
            cache_dir=cache_dir,
            download=data_policy.download,
        )
    except TrackingUnavailableError as exc:
        raise RegistryUnavailableError(str(exc)) from None
    except PipelineError as exc:
        steps = getattr(exc, "steps", None)
        return RetrainResult(
            PIPELINE_STOPPED,
            f"the pipeline stopped at {exc.step}: {exc}",
            data=data,
            steps=steps.render() if steps is not None else "",
        )
    if result.best is None or result.version is None:  # run_pipeline raises instead
        raise RuntimeError("the pipeline returned without a registered version")
    new = result.best.metrics.rmse
    old = result.champion_rmse
    checks = list(result.validation.as_dict()["checks"]) if result.validation else []  # type: ignore[call-overload]
    common: dict[str, Any] = {
        "version": result.version,
        "run_id": result.run_id,
        "model": result.best.name,
        "challenger_rmse": new,
        "champion_rmse": old,
        "data": data,
        "steps": result.steps.render(),
        "checks": checks,
    }
    if old is None:  # no champion to beat: the pipeline made this one champion
        return RetrainResult(GATE_PASSED, "no champion to beat", improvement=None, **common)
    improvement = 1 - new / old
    passed = improvement >= gates.min_improvement
    reason = (
        f"{result.best.name} v{result.version}: RMSE {new:.3f} min on the holdout of "
        f"{data.holdout_rows:,} production rides vs the champion's {old:.3f} "
        f"({improvement:+.1%}; the gate needs {gates.min_improvement:+.1%})"
    )
    if passed and (refused := _smoke_refusal(result.best.pipeline)) is not None:
        passed, reason = False, f"{reason}, but it fails level 3's smoke test: {refused}"
    if not passed:
        _restore_challenger_alias(tracking_uri, model_name, result.aliases_before.get("challenger"))
    return RetrainResult(
        GATE_PASSED if passed else GATE_FAILED, reason, improvement=improvement, **common
    )


def _smoke_refusal(pipeline: Any) -> str | None:
    """Why the router would refuse to deploy ``pipeline`` (level 3's smoke test, with the
    router's default plausible range), or None. Checked at the gate, before any traffic."""
    defaults = RouterSettings.model_fields
    try:
        smoke_test(
            pipeline,
            max_seconds=60.0,  # latency is the router's to judge on its own machine
            min_minutes=float(defaults["smoke_min_minutes"].default),
            max_minutes=float(defaults["smoke_max_minutes"].default),
        )
    except DeploymentError as exc:
        return str(exc).removeprefix("smoke test failed: ")
    return None


def _restore_challenger_alias(tracking_uri: str, model_name: str, before: str | None) -> None:
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        if before is None:
            client.delete_registered_model_alias(model_name, "challenger")
        else:
            client.set_registered_model_alias(model_name, "challenger", before)
    except MlflowException as exc:
        raise RegistryUnavailableError(
            f"the registry at {tracking_uri} failed: {exc.message}"
        ) from None
