"""The router's settings extend level 1's, under their own prefix; the registry never touches
MLflow's process-global URIs nor the environment."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest

from duration_deployment.config import RouterSettings
from duration_deployment.registry import Registry
from duration_service.config import ServiceSettings, Settings

TOKEN = "a-router-token-of-some-length"


def test_prefixes_do_not_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURATION_ROUTER_TOKEN", TOKEN)
    monkeypatch.setenv("DURATION_ROUTER_PORT", "8199")
    monkeypatch.setenv("DURATION_ROUTER_MAX_BATCH_SIZE", "77")
    monkeypatch.setenv("DURATION_SERVE_PORT", "8011")
    router, service = RouterSettings(), Settings()
    assert isinstance(router, ServiceSettings)
    assert (router.port, router.max_batch_size) == (8199, 77)
    assert (service.port, service.max_batch_size) == (8011, 10_000)
    assert RouterSettings(token=TOKEN.upper()).port == 8199  # an argument beside the env


def test_the_registry_leaves_mlflow_globals_and_the_environment_alone(
    registry_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before_uri = mlflow.get_tracking_uri()
    registry = Registry(registry_uri, "nyc-taxi-duration", tmp_path / "cache")
    assert registry.aliases() == {"champion": "1", "challenger": "2"}
    version, folder, digest, _, profile = registry.fetch("models:/nyc-taxi-duration@challenger")
    assert (str(version.version), folder.name, len(digest)) == ("2", "2", 64)
    assert profile is not None
    assert mlflow.get_tracking_uri() == before_uri
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    assert list(work.iterdir()) == []  # no store made in the working directory
