"""Shared fixtures: the bundled real TLC months and small hand-made trip files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from duration_core.datasets import TripMonth, bundled_path
from duration_core.training import TrainingResult, train_model


@pytest.fixture(scope="session")
def jan_path() -> Path:
    path = bundled_path(TripMonth("green", 2021, 1))
    assert path is not None
    return path


@pytest.fixture(scope="session")
def feb_path() -> Path:
    path = bundled_path(TripMonth("green", 2021, 2))
    assert path is not None
    return path


@pytest.fixture(scope="session")
def course_result() -> TrainingResult:
    """The course's reference fit: LinearRegression, train green 2021-01, validate 2021-02."""
    return train_model("green:2021-01", "green:2021-02", model="linear")


@pytest.fixture
def write_trips(tmp_path: Path) -> Callable[..., Path]:
    """Write a small green-taxi style parquet file from columns; returns its path."""

    def write(name: str = "trips.parquet", **columns: pa.Array | list) -> Path:
        path = tmp_path / name
        pq.write_table(pa.table(columns), path)
        return path

    return write
