"""Fixtures of level 4's tests: real months in pickup order, the course's linear champion
trained on green 2021-01 in process, and log-like frames of its predictions."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from duration_core import build_pipeline, read_trips
from duration_core.profile import build_profile
from duration_operations.registry_records import VersionFacts


@cache
def month(spec: str) -> pd.DataFrame:
    """The month's rides kept by the course filter, in pickup order."""
    rides = read_trips(spec)
    return rides.sort_values("pickup_datetime", kind="stable").reset_index(drop=True)


@cache
def linear_champion() -> tuple[object, VersionFacts]:
    train = month("green:2021-01")
    pipeline = build_pipeline("linear")
    pipeline.fit(train, train["duration"])
    profile = build_profile(train, pipeline.predict(train), source="green:2021-01")
    val = month("green:2021-02")
    val_rmse = float(np.sqrt(np.mean((pipeline.predict(val) - val["duration"].to_numpy()) ** 2)))
    facts = VersionFacts(
        version="1",
        run_id="run-1",
        val_rmse=val_rmse,
        profile=profile,
        months=(("green", 2021, 1),),
        tags={"val_rmse": repr(val_rmse)},
    )
    return pipeline, facts


def log_frame(rides: pd.DataFrame, pipeline: object, *, version: str = "1", start_id: int = 1,
              variant: str = "champion", labelled: bool = True) -> pd.DataFrame:  # fmt: skip
    """``rides`` as the router's ``GET /predictions`` gives them (level 3's FRAME_COLUMNS)."""
    n = len(rides)
    return pd.DataFrame(
        {
            "id": np.arange(start_id, start_id + n),
            "at": 1.7e9 + np.arange(n) * 0.01,
            "ride_id": [f"r{start_id + i}" for i in range(n)],
            "variant": variant,
            "model_version": version,
            "shadow": False,
            "forced": False,
            "PULocationID": rides["PULocationID"].to_numpy(),
            "DOLocationID": rides["DOLocationID"].to_numpy(),
            "trip_distance": rides["trip_distance"].to_numpy(dtype="float64"),
            "prediction": pipeline.predict(rides),  # type: ignore[attr-defined]
            "actual": rides["duration"].to_numpy() if labelled else np.nan,
            "latency_ms": 1.0,
            "error": False,
        }
    )


@pytest.fixture(scope="session")
def champion() -> tuple[object, VersionFacts]:
    return linear_champion()
