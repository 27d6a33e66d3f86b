"""The pipeline against a real ``mlflow server`` (MLflow's basic-auth app, the pipeline's own
user) whose backend store is a real PostgreSQL (``--backend-store-uri
postgresql+psycopg://...``): runs, metrics, the registered version and its alias land in
PostgreSQL's tables and read back through the server."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient

from duration_training import PipelineConfig, run_pipeline
from ladder_testing.mlflow_auth import PIPELINE_GRANTS
from ladder_testing.postgres import postgres_server
from ladder_testing.services import mlflow_server

#: Validation RMSE of the linear candidate, green 2021-01 -> 2021-02 (level 2's README).
LINEAR_VAL_RMSE = 7.7587


def test_the_pipeline_tracks_and_registers_on_a_postgresql_backend_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # restored afterwards (MLflow exports it)
    with postgres_server() as postgres:
        store = postgres.create_database("mlflow")
        with mlflow_server(tmp_path / "server", backend_store_uri=store) as server:
            for name, value in server.add_user("pipeline", PIPELINE_GRANTS).env.items():
                monkeypatch.setenv(name, value)
            result = run_pipeline(
                ["green:2021-01"], "green:2021-02", tracking_uri=server.url,
                config=PipelineConfig(candidates=("linear",)),
            )  # fmt: skip
            client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
            model = client.get_registered_model("nyc-taxi-duration")
            candidate = client.get_run(result.candidates[0].run_id)
        engine = sqlalchemy.create_engine(store)
        with engine.connect() as db:
            runs = db.execute(sqlalchemy.text("select count(*) from runs")).scalar()
            versions = db.execute(sqlalchemy.text("select name, version from model_versions")).all()
            aliases = db.execute(
                sqlalchemy.text("select alias, version from registered_model_aliases")
            ).all()
            rmse = db.execute(
                sqlalchemy.text("select value from latest_metrics where key = 'val_rmse'")
            ).scalar()
        engine.dispose()
    assert result.version == "1"
    assert result.best is not None
    assert result.best.metrics.rmse == pytest.approx(LINEAR_VAL_RMSE, abs=5e-5)
    assert candidate.data.metrics["val_rmse"] == pytest.approx(LINEAR_VAL_RMSE, abs=5e-5)
    assert {a: str(v) for a, v in model.aliases.items()}["champion"] == "1"
    assert runs == 2  # the pipeline's run and its linear candidate's nested run
    assert versions == [("nyc-taxi-duration", 1)]
    assert ("champion", 1) in aliases
    assert rmse == pytest.approx(LINEAR_VAL_RMSE, abs=5e-5)
