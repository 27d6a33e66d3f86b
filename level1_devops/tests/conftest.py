"""Fixtures: a model trained on the bundled January data, and clients of the app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from duration_core import LoadedModel, load_model, save_model, train_model
from duration_service import Settings, create_app


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The course's model: LinearRegression trained on green 2021-01, validated on 2021-02."""
    result = train_model("green:2021-01", "green:2021-02", model="linear")
    path = tmp_path_factory.mktemp("models") / "linear.zip"
    save_model(result.pipeline, path, result.metadata())
    return path


@pytest.fixture(scope="session")
def model(model_path: Path) -> LoadedModel:
    return load_model(model_path)


@pytest.fixture(scope="session")
def make_client() -> Callable[..., object]:
    """``with make_client(model_path=..., ...) as client``: an app with its lifespan run."""

    @contextmanager
    def make(**overrides: object) -> Iterator[TestClient]:
        app = create_app(Settings(**overrides))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client

    return make


@pytest.fixture(scope="module")
def client(make_client, model_path: Path) -> Iterator[TestClient]:
    with make_client(model_path=model_path, max_batch_size=5, max_body_bytes=4096) as client:
        yield client
