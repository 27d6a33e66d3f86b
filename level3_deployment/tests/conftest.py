"""Fixtures: a real MLflow registry with two versions trained by the level-2 pipeline.

v1 is the ``linear`` model (champion), v2 the ``gbm`` model (challenger), both trained on the
bundled green 2021-01 and validated on 2021-02, as a workshop would. Tests that move aliases
work on a copy of the registry database (the artifacts are read-only and shared).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from duration_deployment.main import create_app
from duration_training import PipelineConfig, run_pipeline
from ladder_testing.postgres import PostgresServer, postgres_server
from ladder_testing.router import TrainedRegistry, router_settings


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory) -> TrainedRegistry:
    folder = tmp_path_factory.mktemp("registry")
    saved_uri = os.environ.get("MLFLOW_TRACKING_URI")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # mlflow.db and mlartifacts/ go here
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        linear = run_pipeline(
            ["green:2021-01"], "green:2021-02",
            config=PipelineConfig(candidates=("linear",)), tracking_uri=uri,
        )  # fmt: skip
        gbm = run_pipeline(
            ["green:2021-01"], "green:2021-02",
            config=PipelineConfig(candidates=("gbm",), offline_promotion=False), tracking_uri=uri,
        )  # fmt: skip
    if saved_uri is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    assert (linear.version, gbm.version) == ("1", "2")
    assert gbm.aliases_moved == ["challenger"]  # offline promotion off: champion stays v1
    return TrainedRegistry(folder, folder / "mlflow.db", linear.version, gbm.version)


@pytest.fixture
def registry_uri(trained_registry: TrainedRegistry, tmp_path: Path) -> str:
    """A private copy of the registry database (aliases may move), same artifacts."""
    copy = tmp_path / "mlflow.db"
    shutil.copyfile(trained_registry.database, copy)
    return f"sqlite:///{copy}"


@pytest.fixture
def router_client(tmp_path: Path, registry_uri: str) -> Iterator[object]:
    """A TestClient of a router that deployed the registry's champion (v1) and challenger (v2,
    10%) at start-up."""
    from fastapi.testclient import TestClient

    app = create_app(router_settings(tmp_path, registry_uri))
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server (skips, or fails under CI, without PostgreSQL)."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty prediction-log database: a SQLite file, or a new database on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'prediction_log.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"log_{len(server.databases)}")
