"""Real predictions for A/B tests: models trained on green 2021-01 predict 2021-03 rides.

A linear baseline and the gbm candidate of ``duration_core`` are fitted on the bundled January
2021 green-taxi month and predict a seeded sample of 4,000 March 2021 rides (their actual
durations are the feedback). A router split is simulated by a hash of each ride's row label:
a ride goes to the challenger when ``sha256(label) mod 100`` is below its share, as sticky
routing by ride id would. Latencies are real too: single-ride ``predict`` calls timed on this
machine, assigned to rows in turn. Level 3's analysis and report tests share them.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from duration_core import TripMonth, build_pipeline, load_trips, resolve_month

SAMPLE_RIDES = 4_000
SAMPLE_SEED = 0
#: Single-ride predictions timed per model for the latency column.
TIMED_RIDES = 40


@dataclass(frozen=True)
class RealPredictions:
    """Predictions of the two trained models on the same real rides.

    Attributes:
        rides: ``SAMPLE_RIDES`` rides of green 2021-03 (``duration_core`` columns).
        actual: Their actual durations, minutes, shape ``(n,)``.
        predictions: Predicted minutes per model (``linear``, ``gbm``), shape ``(n,)`` each.
        latency_ms: Measured single-ride latency per model, shape ``(n,)`` each (the
            ``TIMED_RIDES`` timings repeated in turn).
        bucket: ``sha256(row label) mod 100`` per ride, shape ``(n,)``.
    """

    rides: pd.DataFrame
    actual: np.ndarray
    predictions: dict[str, np.ndarray]
    latency_ms: dict[str, np.ndarray]
    bucket: np.ndarray

    @property
    def ride_ids(self) -> list[str]:
        return [f"green-2021-03-{label}" for label in self.rides.index]


def load_month(spec: str) -> pd.DataFrame:
    """A bundled month's rides (never downloaded)."""
    return load_trips(resolve_month(TripMonth.parse(spec), download=False), download=False).rides


@functools.lru_cache(maxsize=1)
def real_predictions() -> RealPredictions:
    """Train linear and gbm on green 2021-01, predict a sample of 2021-03 (once a session)."""
    train = load_month("green:2021-01")
    rides = load_month("green:2021-03").sample(SAMPLE_RIDES, random_state=SAMPLE_SEED)
    predictions, latency = {}, {}
    # One OpenMP thread: the gbm fit takes ~1 s so, but ~40 s on a busy 2-core machine when
    # its spinning OpenMP threads fight other processes for the cores.
    with threadpool_limits(limits=1):
        for model in ("linear", "gbm"):
            pipeline = build_pipeline(model).fit(train, train["duration"].to_numpy())
            predictions[model] = np.asarray(pipeline.predict(rides), dtype="float64")
            timings = []
            for i in range(TIMED_RIDES):
                start = time.perf_counter()
                pipeline.predict(rides.iloc[[i]])
                timings.append((time.perf_counter() - start) * 1000)
            latency[model] = np.resize(np.asarray(timings), len(rides))
    bucket = np.array(
        [
            int(hashlib.sha256(str(label).encode()).hexdigest()[:8], 16) % 100
            for label in rides.index
        ]
    )
    return RealPredictions(
        rides=rides,
        actual=rides["duration"].to_numpy(dtype="float64"),
        predictions=predictions,
        latency_ms=latency,
        bucket=bucket,
    )


def log_rows(
    real: RealPredictions, model: str, variant: str, version: str, *, shadow: bool = False
) -> pd.DataFrame:
    """The prediction-log rows of ``model`` answering every sampled ride as ``variant``."""
    return pd.DataFrame(
        {
            "variant": variant,
            "model_version": version,
            "shadow": shadow,
            "prediction": real.predictions[model],
            "actual": real.actual,
            "latency_ms": real.latency_ms[model],
            "error": False,
            "ride_id": real.ride_ids,
        }
    )


def split_frame(
    real: RealPredictions, champion_model: str, challenger_model: str, challenger_share: int
) -> pd.DataFrame:
    """A live split: rides with ``bucket < challenger_share`` go to the challenger."""
    to_challenger = real.bucket < challenger_share
    champion = log_rows(real, champion_model, "champion", "1")
    challenger = log_rows(real, challenger_model, "challenger", "2")
    champion.loc[to_challenger] = challenger.loc[to_challenger]
    return champion


def shadow_frame(real: RealPredictions, champion_model: str, shadow_model: str) -> pd.DataFrame:
    """The champion answers every ride; the challenger scores the same rides in shadow."""
    return pd.concat(
        [
            log_rows(real, champion_model, "champion", "1"),
            log_rows(real, shadow_model, "challenger", "2", shadow=True),
        ],
        ignore_index=True,
    )


@functools.lru_cache(maxsize=1)
def month_predictions() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Every ride of green 2021-03: (actual minutes, {model: predicted minutes}), each
    shape ``(80372,)``; linear and gbm fitted on green 2021-01 (once a session)."""
    train = load_month("green:2021-01")
    rides = load_month("green:2021-03")
    predictions = {}
    with threadpool_limits(limits=1):
        for model in ("linear", "gbm"):
            pipeline = build_pipeline(model).fit(train, train["duration"].to_numpy())
            predictions[model] = np.asarray(pipeline.predict(rides), dtype="float64")
    return rides["duration"].to_numpy(dtype="float64"), predictions


def random_split_frame(
    actual: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    *,
    rides: int,
    share: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """A prediction log of ``rides`` rides drawn without replacement, each sent to the
    challenger with probability ``share``; ``champion``/``challenger`` are each model's
    predictions (minutes) for every ride of ``actual``."""
    drawn = rng.choice(actual.size, rides, replace=False)
    to_challenger = rng.random(rides) < share
    return pd.DataFrame(
        {
            "variant": np.where(to_challenger, "challenger", "champion"),
            "model_version": np.where(to_challenger, "2", "1"),
            "shadow": False,
            "prediction": np.where(to_challenger, challenger[drawn], champion[drawn]),
            "actual": actual[drawn],
            "latency_ms": 1.0,
            "error": False,
            "ride_id": [f"r{i}" for i in drawn],
        }
    )


def welch_decides_at_some_look(
    frame: pd.DataFrame, *, look: int, alpha: float = 0.05, min_labelled: int = 30
) -> bool:
    """Whether Welch's t-test on squared error reaches ``p < alpha`` at some look, reading the
    log every ``look`` rows once each side has ``min_labelled`` rides (a monitor acting on the
    first fixed-horizon verdict)."""
    from scipy import stats  # only the A/B tests and benchmark need it

    se = ((frame["prediction"] - frame["actual"]) ** 2).to_numpy()
    challenger = (frame["variant"] == "challenger").to_numpy()
    for end in range(look, len(frame) + 1, look):
        a, b = se[:end][~challenger[:end]], se[:end][challenger[:end]]
        if (
            min(a.size, b.size) >= min_labelled
            and stats.ttest_ind(b, a, equal_var=False).pvalue < alpha
        ):
            return True
    return False
