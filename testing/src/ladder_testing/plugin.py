"""pytest fixtures every level's tests get (the ``pytest11`` entry point of ladder-testing)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


@pytest.fixture
def write_trips(tmp_path: Path) -> Callable[..., Path]:
    """``write_trips(name, **columns)`` writes a small green-taxi style parquet file from
    columns (lists or pyarrow arrays) under the test's ``tmp_path``; returns its path."""

    def write(name: str = "trips.parquet", **columns: Any) -> Path:
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
