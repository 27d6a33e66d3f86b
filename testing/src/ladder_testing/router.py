"""Helpers of level 3's tests: the control token, a router started in process on a registry,
its routing table and metrics as a test reads them, and the registry's aliases read back with
MLflow's own client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from duration_deployment.config import DEFAULT_MODEL_NAME, RouterSettings
from duration_deployment.main import create_app

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODEL = DEFAULT_MODEL_NAME
RIDE = {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}


@dataclass(frozen=True)
class TrainedRegistry:
    """A registry trained by the level-2 pipeline: its folder, its SQLite file and the two
    versions (champion, challenger)."""

    folder: Path
    database: Path
    champion: str
    challenger: str


def router_settings(tmp_path: Path, registry_uri: str, **overrides: object) -> RouterSettings:
    """Settings of a router on ``registry_uri`` with its log, journal and cache under
    ``tmp_path``."""
    values: dict[str, Any] = {
        "token": TOKEN,
        "tracking_uri": registry_uri,
        "prediction_log_url": f"sqlite:///{tmp_path / 'prediction_log.db'}",
        "log_journal_dir": tmp_path / "prediction-log-journal",
        "model_cache_dir": tmp_path / "cache",
        "log_flush_seconds": 0.05,
    }
    values.update(overrides)
    return RouterSettings(**values)


@contextmanager
def running(settings: RouterSettings) -> Iterator[TestClient]:
    """A started router (lifespan run: deployed from the aliases) and its client."""
    with TestClient(create_app(settings)) as client:
        yield client


def table(client: TestClient) -> dict[str, Any]:
    """``{variant: (model_version, weight, shadow)}`` and the revision, from GET /deployments."""
    response = client.get("/deployments", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()["table"]
    return {
        "revision": body["revision"],
        **{v["variant"]: (v["model_version"], v["weight"], v["shadow"]) for v in body["variants"]},
    }


def mlflow_client(registry_uri: str) -> MlflowClient:
    """MLflow's client of a registry, with both URIs given (never the process-wide ones)."""
    return MlflowClient(tracking_uri=registry_uri, registry_uri=registry_uri)


def registry_aliases(registry_uri: str) -> dict[str, str]:
    """``{alias: version}`` of the ladder's model in the registry."""
    model = mlflow_client(registry_uri).get_registered_model(MODEL)
    return {alias: str(version) for alias, version in model.aliases.items()}


def metric_value(client: TestClient, name: str, **labels: str) -> float | None:
    """The value of the sample ``name{labels}`` in /metrics (labels must all match), or None."""
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None
