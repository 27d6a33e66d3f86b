"""Pipeline configuration: pydantic-settings, environment variables prefixed
``DURATION_PIPELINE_``."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from duration_core.model import MODEL_NAME, REGRESSORS


class PipelineConfig(BaseSettings):
    """Thresholds and names of the training pipeline.

    Attributes:
        tracking_uri: MLflow tracking URI; default the embedded ``sqlite:///mlflow.db`` (the
            ``MLFLOW_TRACKING_URI`` variable, or ``--tracking-uri``, overrides it).
        experiment: MLflow experiment of the runs.
        model_name: Registered model name.
        candidates: Models trained and compared (keys of ``duration_core.model.REGRESSORS``).
        min_rides: Fewest rides a month may have after the duration filter.
        min_kept_share: Smallest share of a month's rides the duration filter may keep (0-1).
        max_trip_distance: Miles above which a distance counts as implausible.
        min_plausible_distance_share: Smallest share of rides with a finite distance in
            ``[0, max_trip_distance]`` (0-1).
        min_distance_duration_correlation: Smallest Spearman rank correlation of trip
            distance and duration (-1 to 1). Real months have 0.78-0.85 (green 2021-01 to
            2023-03); durations that do not belong to their rides (shuffled, or joined to the
            wrong ride) have about 0.00. Level 4 retrains on fed-back durations: this is the
            check that stops a corrupted feedback join.
        champion_margin: Relative RMSE improvement needed to replace the champion (0.01 = 1%).
        offline_promotion: Move ``champion`` when the new version wins on the validation
            month. Level 3 turns it off: with a router serving the champion, an A/B test on
            live traffic decides (the first version still becomes champion).
    """

    model_config = SettingsConfigDict(env_prefix="DURATION_PIPELINE_", extra="ignore")

    tracking_uri: str | None = None
    experiment: str = MODEL_NAME
    model_name: str = MODEL_NAME
    candidates: tuple[str, ...] = ("linear", "lasso", "ridge", "gbm")
    min_rides: int = Field(default=1_000, ge=1)
    min_kept_share: float = Field(default=0.9, ge=0, le=1, allow_inf_nan=False)
    max_trip_distance: float = Field(default=500.0, gt=0, allow_inf_nan=False)
    min_plausible_distance_share: float = Field(default=0.99, ge=0, le=1, allow_inf_nan=False)
    min_distance_duration_correlation: float = Field(default=0.3, ge=-1, le=1, allow_inf_nan=False)
    champion_margin: float = Field(default=0.01, ge=0, lt=1, allow_inf_nan=False)
    offline_promotion: bool = True

    @field_validator("candidates")
    @classmethod
    def _known_models(cls, candidates: tuple[str, ...]) -> tuple[str, ...]:
        if not candidates:
            raise ValueError(f"no candidate models given: choose from {', '.join(REGRESSORS)}")
        unknown = [c for c in candidates if c not in REGRESSORS]
        if unknown:
            raise ValueError(
                f"unknown candidate model(s) {unknown}: expected some of {', '.join(REGRESSORS)}"
            )
        twice = sorted({c for c in candidates if candidates.count(c) > 1})
        if twice:
            raise ValueError(f"candidate model(s) {twice} given twice")
        return candidates
