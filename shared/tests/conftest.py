"""Fixtures of the core tests: the bundled real TLC months. Small hand-made trip files and a
loopback HTTP server come from ladder-testing's plugin (``write_trips``, ``loopback_server``)."""

from __future__ import annotations

from pathlib import Path

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
