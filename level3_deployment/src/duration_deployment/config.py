"""Router configuration: level 1's :class:`~duration_service.config.ServiceSettings` (host,
port, limits, logging, the scikit-learn version rule) plus the router's own, under the
environment prefix ``DURATION_ROUTER_``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from duration_core import MODEL_NAME
from duration_deployment.analysis import ALWAYS_VALID, Design
from duration_service.config import ServiceSettings

#: Environment prefix of the router's settings (and of duration-deploy's URL and token).
ENV_PREFIX = "DURATION_ROUTER_"
#: The prediction log when none is named: a SQLite file in the working folder.
DEFAULT_LOG_URL = "sqlite:///prediction_log.db"
#: The registered model of the ladder (level 2's ``duration-pipeline`` registers it).
DEFAULT_MODEL_NAME = MODEL_NAME


class RouterSettings(ServiceSettings):
    """Validated at start-up; every field can be set as ``DURATION_ROUTER_<NAME>``, those of
    :class:`~duration_service.config.ServiceSettings` too (port 8100 by default).

    Attributes:
        token: Bearer token of the control API (``/deployments``, ``/promote``, ``/rollback``,
            ``/feedback``). Required: at least 16 characters. Never logged.
        tracking_uri: The MLflow tracking/registry URI; default ``$MLFLOW_TRACKING_URI``, else
            the embedded ``sqlite:///mlflow.db`` of level 2.
        model_name: The registered model whose versions the router deploys. A deployment
            request may only name a version (or alias) of this model.
        prediction_log_url: SQLAlchemy URL of the prediction log (SQLite, WAL mode, by
            default; ``postgresql+psycopg://...`` with a driver installed).
        log_batch_rows: Most rows written to the prediction log in one transaction.
        log_flush_seconds: Longest a logged prediction waits in memory before it is written.
        log_max_pending: Rows kept in memory while the log database is unreachable; past it the
            oldest are dropped and counted (``duration_router_log_rows_dropped_total``).
        log_journal_dir: The prediction log's write-ahead journal (a local folder, one per
            router): a prediction is answered once its row is there, and a router restarted
            after a crash writes the rows the database missed. Empty: no journal (a crash
            loses up to ``log_flush_seconds`` of answered predictions).
        log_journal_fsync: Also wait for the disk after each journal write: survives an
            operating-system crash or power cut, at the disk's latency per request.
        model_cache_dir: Where downloaded model versions are kept.
        deploy_on_start: Deploy the registry's ``champion`` (and ``challenger``) at start-up.
        challenger_weight: Traffic share of a challenger deployed without a weight, and of the
            ``challenger`` alias at start-up when no saved table says otherwise.
        smoke_max_seconds: Latency budget of the smoke test (the sample rides, one call).
        smoke_min_minutes / smoke_max_minutes: Plausible range of a predicted duration; the
            course's filter keeps 1-60 minute rides, the smoke test allows some slack.
        guardrails: Watch non-champion variants and roll them back past the limits below.
        guardrail_window: Predictions per variant in the sliding window.
        guardrail_min_predictions: Predictions needed before a guardrail can fire.
        guardrail_max_error_rate: Share of failed predictions that rolls a variant back.
        guardrail_max_p99_ms: p99 prediction latency (milliseconds) that rolls it back...
        guardrail_p99_ratio: ...when it is also this many times the champion's p99 (a pause
            that slows every variant is not the challenger's fault).
        drift_window: Logged predictions per variant that the drift report compares. Sampling
            noise alone gives zone PSIs of about (zones - 1) / rows: 0.05 at 5,000 rides.
        ab_alpha: Significance level of the A/B test.
        ab_min_detectable_effect: Relative change in mean squared error worth detecting.
        ab_design: ``"always valid"`` (the mSPRT: the verdict may be read at any time) or
            ``"fixed horizon"`` (Welch / paired bootstrap: valid at one planned look only).
        ab_mixture_scale: The always-valid test's mixing scale relative to the champion's
            MSE: decisions come quickest for effects near it.
        history_depth: Earlier routing tables kept in memory for ``/rollback``.
        max_shadows: Most shadow variants at once (each predicts a copy of every ride).
        monitor_interval_seconds: Seconds between two scheduled monitoring runs (the drift
            and A/B reports recomputed off the request path, their gauges set; the first run
            one interval after start-up); 0 turns the schedule off (the gauges then move only
            when someone reads ``/monitoring/report``). See ``monitor_loop.py``.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    token: SecretStr
    tracking_uri: str | None = None
    model_name: str = Field(default=DEFAULT_MODEL_NAME, min_length=1)
    prediction_log_url: str = DEFAULT_LOG_URL
    log_batch_rows: int = Field(default=2_000, ge=1)
    log_flush_seconds: float = Field(default=0.2, gt=0, le=60)
    log_max_pending: int = Field(default=1_000_000, ge=1_000)
    log_journal_dir: Path | None = Path("prediction-log-journal")
    log_journal_fsync: bool = False
    model_cache_dir: Path = Path("models/router-cache")
    deploy_on_start: bool = True
    challenger_weight: float = Field(default=0.1, gt=0, lt=1)
    smoke_max_seconds: float = Field(default=2.0, gt=0)
    smoke_min_minutes: float = 0.0
    smoke_max_minutes: float = 180.0
    guardrails: bool = True
    guardrail_window: int = Field(default=200, ge=10)
    guardrail_min_predictions: int = Field(default=50, ge=1)
    guardrail_max_error_rate: float = Field(default=0.05, gt=0, le=1)
    guardrail_max_p99_ms: float = Field(default=250.0, gt=0)
    guardrail_p99_ratio: float = Field(default=2.0, ge=1)
    drift_window: int = Field(default=5_000, ge=1_000)
    ab_alpha: float = Field(default=0.05, gt=0, lt=0.5)
    ab_min_detectable_effect: float = Field(default=0.05, gt=0, lt=1)
    ab_design: Design = ALWAYS_VALID
    ab_mixture_scale: float = Field(default=0.2, gt=0, le=10)
    history_depth: int = Field(default=20, ge=1, le=1_000)
    max_shadows: int = Field(default=3, ge=0, le=20)
    port: int = Field(default=8100, ge=1, le=65_535)
    # -- the scheduled monitor (monitor_loop.py) --
    monitor_interval_seconds: float = Field(default=60.0, ge=0, le=86_400)

    @field_validator("log_journal_dir", mode="before")
    @classmethod
    def _no_journal(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("token")
    @classmethod
    def _long_enough(cls, token: SecretStr) -> SecretStr:
        if len(token.get_secret_value().strip()) < 16:
            raise ValueError("the control token must be at least 16 characters")
        return token
