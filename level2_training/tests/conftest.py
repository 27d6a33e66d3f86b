"""Fixtures: a fresh working folder per test, so the embedded sqlite:///mlflow.db and the
./mlartifacts folder of one test never leak into another."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield tmp_path
    mlflow.set_tracking_uri(None)  # back to MLflow's default for the next test
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # which set_tracking_uri also exports
