"""Shared fixtures: the bundled real TLC months and small hand-made trip files."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
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


@pytest.fixture
def loopback_server() -> Iterator[Callable[[type[http.server.BaseHTTPRequestHandler]], str]]:
    """``loopback_server(Handler)`` starts a real HTTP server on 127.0.0.1 and a free port and
    returns its base URL; every server started is stopped when the test ends."""
    servers: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []

    def start(handler: type[http.server.BaseHTTPRequestHandler]) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
