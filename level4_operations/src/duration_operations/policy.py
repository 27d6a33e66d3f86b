"""The operations policy: what fires a retrain, what it trains on, what it must beat, how it
rolls out, and the limits. One TOML file (``policy.toml`` beside this README is the default
and its reference), validated here; every field's description names its unit.

:func:`load_policy` is the only reader: a missing file, bad TOML, an unknown key, a value out
of range or stages that cannot end in a promotion raise :class:`PolicyError` naming the file
and the field.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from duration_core import DurationCoreError, TripMonth
from duration_core.model import REGRESSORS
from duration_core.profile import DRIFT_FEATURES, UNSEEN_PAIR_THRESHOLD
from duration_deployment.api.routes.history import MAX_PAGE_ROWS

Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class PolicyError(ValueError):
    """The policy file is missing, is not TOML, or a field is wrong (the message names it)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriftTrigger(_Section):
    """Input drift of the champion's live traffic against its training profile."""

    enabled: StrictBool = Field(default=True, description="whether drift can fire a retrain")
    window: StrictInt = Field(
        default=2_500,
        ge=500,
        le=100_000,
        description=(
            "rides (the champion's live predictions) per window; zone PSI from sampling noise "
            "alone is about (zones - 1) / rides, 0.1 at 2,500"
        ),
    )
    windows: StrictInt = Field(
        default=2,
        ge=1,
        le=20,
        description="k: consecutive disjoint latest windows that must all drift",
    )
    psi: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: {
            "PULocationID": 0.3,
            "DOLocationID": 0.3,
            "trip_distance": 0.25,
            "prediction": 0.25,
        },
        description=(
            "PSI (unitless) per distribution above which a window drifts; 0.25 is the usual "
            "'significant shift' line, zones get 0.3: consecutive 2,500-ride windows of the "
            "quiet 2021-02/03 reach 0.20, 2023-03's are 1.06-1.35; features left out are "
            "not watched"
        ),
    )
    unseen_pair_share: Share = Field(
        default=UNSEEN_PAIR_THRESHOLD,
        description=(
            "share (0-1) of rides on PU_DO pairs unseen in training above which a window drifts"
        ),
    )

    @model_validator(mode="after")
    def _one_page(self) -> DriftTrigger:
        if self.window * self.windows > MAX_PAGE_ROWS:
            raise ValueError(
                f"window x windows = {self.window * self.windows:,} rides: the router answers "
                f"at most {MAX_PAGE_ROWS:,} predictions at a time"
            )
        return self

    @model_validator(mode="after")
    def _known_features(self) -> DriftTrigger:
        unknown = sorted(set(self.psi) - set(DRIFT_FEATURES))
        if unknown:
            raise ValueError(
                f"psi: unknown feature(s) {unknown}: expected some of {DRIFT_FEATURES}"
            )
        return self


class PerformanceTrigger(_Section):
    """Live RMSE of the champion from fed-back durations against its validation RMSE."""

    enabled: StrictBool = Field(default=True, description="whether live RMSE can fire a retrain")
    window: StrictInt = Field(
        default=2_000,
        ge=100,
        le=200_000,
        description="latest labelled champion rides the RMSE uses",
    )
    margin: float = Field(
        default=0.15,
        ge=0,
        le=10,
        allow_inf_nan=False,
        description=(
            "relative excess (0.15 = 15%) of live RMSE over the version's val_rmse tag that "
            "fires; green 2021-02/03 run 0-3% above 2021-01's validation RMSE"
        ),
    )


class ScheduleTrigger(_Section):
    """Retrain at a fixed age of the champion, whatever the metrics say."""

    enabled: StrictBool = Field(default=False, description="whether age alone can fire a retrain")
    every_hours: float = Field(
        default=168.0,
        gt=0,
        allow_inf_nan=False,
        description="hours since the champion was deployed",
    )


class NewMonthTrigger(_Section):
    """A TLC month newer than every month the champion was trained on has been published."""

    enabled: StrictBool = Field(
        default=False, description="whether a new published month can fire a retrain"
    )
    service: Literal["green", "yellow", "fhv", "fhvhv"] = Field(
        default="green", description="TLC service whose months are watched"
    )
    download: StrictBool = Field(
        default=False,
        description=(
            "ask the TLC server (a HEAD request) when the month is neither bundled nor cached; "
            "off where there is no network"
        ),
    )


class Triggers(_Section):
    drift: DriftTrigger = DriftTrigger()
    performance: PerformanceTrigger = PerformanceTrigger()
    schedule: ScheduleTrigger = ScheduleTrigger()
    new_month: NewMonthTrigger = NewMonthTrigger()


class RetrainingData(_Section):
    """Production rides (prediction log joined with feedback) the retrain uses."""

    rides: StrictInt = Field(
        default=20_000,
        ge=1_000,
        le=MAX_PAGE_ROWS // 2,  # the loop asks for twice as many log rows
        description="latest labelled live rides fetched from the router",
    )
    min_rides: StrictInt = Field(
        default=15_000,
        ge=500,
        description=(
            "fewest labelled rides a retrain starts with (else it waits); the new version's "
            "profile is built from the training part, and a small profile drifts from its "
            "own traffic: 4,200 training rides of 2023-03 gave later windows PSI up to 0.49, "
            "11,250 up to 0.18"
        ),
    )
    holdout_share: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        default=0.25,
        description="latest share (0-1, by answer time) of the rides kept out as holdout",
    )
    months: list[str] = Field(
        default_factory=list,
        description=(
            "published months added to the training part (service:YYYY-MM, e.g. "
            "green:2023-02); bundled or cached ones only unless download is on"
        ),
    )
    since_drift_onset: StrictBool = Field(
        default=True,
        description=(
            "when drift fired, only rides from its first drifted window on: the model learns "
            "the traffic it will serve (and its profile is that traffic's, so it does not "
            "drift again at once)"
        ),
    )
    download: StrictBool = Field(default=False, description="whether months may be downloaded")

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, candidates: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in candidates if c not in REGRESSORS]
        if not candidates or unknown or len(set(candidates)) != len(candidates):
            raise ValueError(
                f"candidates {list(candidates)}: one or more of {', '.join(REGRESSORS)}, each once"
            )
        return candidates

    @field_validator("months")
    @classmethod
    def _months(cls, months: list[str]) -> list[str]:
        for month in months:
            try:
                TripMonth.parse(month)
            except DurationCoreError as exc:
                raise ValueError(f"months: {exc}") from None
        return months

    @model_validator(mode="after")
    def _enough(self) -> RetrainingData:
        if self.min_rides > self.rides:
            raise ValueError(f"min_rides {self.min_rides:,} is above rides {self.rides:,}")
        return self

    candidates: tuple[str, ...] = Field(
        default=("linear", "gbm"),
        description="level 2's candidate models (duration_core REGRESSORS)",
    )


class Gates(_Section):
    """What a retrained version must show before any traffic."""

    min_improvement: float = Field(
        default=0.02,
        ge=0,
        lt=1,
        allow_inf_nan=False,
        description=(
            "relative RMSE improvement (0.02 = 2%) over the champion, both scored on the "
            "holdout of recent production rides"
        ),
    )


class Stage(_Section):
    """One rollout stage: the challenger in shadow (paired test) or live at a weight."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$", description="shown in the history")
    shadow: StrictBool = Field(
        default=False, description="scored on every ride, answers no request"
    )
    weight: Share = Field(default=0.0, description="live traffic share (0-1); 0 for a shadow stage")
    min_labelled: StrictInt = Field(
        default=200, ge=30, description="labelled challenger rides before the stage may end"
    )
    max_labelled: StrictInt = Field(
        default=20_000,
        ge=30,
        description="labelled challenger rides after which an undecided stage ends",
    )
    undecided: Literal["advance", "roll back"] = Field(
        default="roll back",
        description=(
            "what an undecided test at max_labelled does: 'advance' (no harm shown is "
            "enough) or 'roll back' (no gain shown is a loss)"
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Stage:
        if self.shadow and self.weight:
            raise ValueError(f"stage {self.name}: a shadow stage has weight 0")
        if not self.shadow and not 0 < self.weight < 1:
            raise ValueError(f"stage {self.name}: a live stage needs a weight between 0 and 1")
        if self.max_labelled < self.min_labelled:
            raise ValueError(f"stage {self.name}: max_labelled is below min_labelled")
        return self


def _default_stages() -> list[Stage]:
    return [
        Stage(name="shadow", shadow=True, min_labelled=200, max_labelled=5_000),
        Stage(name="canary-10", weight=0.1, min_labelled=100, max_labelled=3_000),
        Stage(name="canary-50", weight=0.5, min_labelled=200, max_labelled=5_000),
    ]


class Rollout(_Section):
    stages: list[Stage] = Field(default_factory=_default_stages, min_length=1)
    require_approval: StrictBool = Field(
        default=False,
        description=(
            "the final promotion waits for `duration-operate approve` (every earlier stage "
            "still runs on its own)"
        ),
    )

    @model_validator(mode="after")
    def _ordered(self) -> Rollout:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names repeat: {names}")
        weights = [s.weight for s in self.stages if not s.shadow]
        if weights != sorted(weights) or len(set(weights)) != len(weights):
            raise ValueError(f"live stages' weights must rise: {weights}")
        flags = [s.shadow for s in self.stages]
        if flags != sorted(flags, reverse=True):
            raise ValueError("shadow stages come before the live ones")
        if sum(flags) > 1:  # the table tells a stage by the challenger's shadow flag and weight
            raise ValueError("at most one shadow stage")
        return self


class Limits(_Section):
    cooldown_minutes: float = Field(
        default=60.0,
        ge=0,
        allow_inf_nan=False,
        description="minutes after a retrain before the next",
    )
    max_retrains_per_day: StrictInt = Field(default=4, ge=1, description="retrains in any 24 hours")


class Policy(_Section):
    """The whole policy; see ``policy.toml`` for a commented example."""

    interval_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="seconds between monitor passes",
    )
    frozen: StrictBool = Field(
        default=False, description="no retrain, no stage change (also: `duration-operate freeze`)"
    )
    triggers: Triggers = Triggers()
    retraining: RetrainingData = RetrainingData()
    gates: Gates = Gates()
    rollout: Rollout = Rollout()
    limits: Limits = Limits()


def default_policy_text() -> str:
    """The bundled ``policy.toml``, the reference of every field."""
    return resources.files("duration_operations").joinpath("policy.toml").read_text("utf-8")


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy in ``path`` (TOML), or the bundled default when None.

    Raises:
        PolicyError: The file is missing or unreadable, not TOML, or a field is wrong; the
            message names the file and the field (``rollout.stages.1.weight: ...``).
    """
    where = "the bundled policy.toml" if path is None else str(path)
    try:
        text = default_policy_text() if path is None else Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{where}: cannot read the policy: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{where}: not TOML: {exc}") from None
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise PolicyError(f"{where}: {problems}") from None
