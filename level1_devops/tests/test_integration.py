"""A real ``duration-serve`` process on 127.0.0.1, called over HTTP with httpx."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from duration_core import LoadedModel, read_trips
from ladder_testing import free_port, stop_process
from ladder_testing.prometheus import sample

SERVE = str(Path(sys.executable).with_name("duration-serve"))
CLEAN_EXIT = (0, -signal.SIGTERM)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    log: Path

    def stop(self) -> int:
        """SIGTERM, as a process manager stops it; returns the exit code.

        uvicorn shuts down gracefully, then re-raises the signal (uvicorn >= 0.29), so a clean
        stop exits with -SIGTERM; a crash would show another code and a traceback in the log.
        """
        return stop_process(self.process, timeout=20)


def start_server(
    tmp_path: Path, *args: str, expect_ready: bool = True, env: dict[str, str] | None = None
) -> Server:
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    process = subprocess.Popen(
        [SERVE, "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"duration-serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            ready = httpx.get(f"{server.url}/ready", timeout=1)
            if ready.status_code == (200 if expect_ready else 503):
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"duration-serve did not become ready in 60 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("serve"), "--model", str(model_path))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def february_rides() -> list[dict]:
    """200 real rides of the validation month, as a client would send them."""
    rides = read_trips("green:2021-02").head(200)
    return [
        {
            "PULocationID": int(r.PULocationID),
            "DOLocationID": int(r.DOLocationID),
            "trip_distance": float(r.trip_distance),
            "ride_id": f"feb-{i}",
        }
        for i, r in enumerate(rides.itertuples())
    ]


def test_known_ride_equals_pipeline_predict(server: Server, model: LoadedModel) -> None:
    ride = {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}
    response = httpx.post(f"{server.url}/predict", json=ride)
    assert response.status_code == 200
    assert response.json()["duration"] == float(model.pipeline.predict([ride])[0])
    assert response.json()["model_version"] == model.version


def test_concurrent_requests_each_get_their_own_prediction(
    server: Server, model: LoadedModel, february_rides: list[dict]
) -> None:
    fields = ("PULocationID", "DOLocationID", "trip_distance")
    expected = model.pipeline.predict([{k: r[k] for k in fields} for r in february_rides])

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
            return await asyncio.gather(*(client.post("/predict", json=r) for r in february_rides))

    responses = asyncio.run(send_all())
    assert [r.status_code for r in responses] == [200] * len(february_rides)
    answers = {r.json()["ride_id"]: r.json()["duration"] for r in responses}
    assert [answers[r["ride_id"]] for r in february_rides] == expected.tolist()


def test_batch_of_real_rides_over_http(server: Server, model, february_rides) -> None:
    response = httpx.post(f"{server.url}/predict/batch", json={"rides": february_rides})
    assert response.status_code == 200
    fields = ("PULocationID", "DOLocationID", "trip_distance")
    expected = model.pipeline.predict([{k: r[k] for k in fields} for r in february_rides])
    assert [p["duration"] for p in response.json()["predictions"]] == expected.tolist()


def test_metrics_count_n_requests(server: Server) -> None:
    before = httpx.get(f"{server.url}/metrics").text
    ride = {"PULocationID": 74, "DOLocationID": 75, "trip_distance": 0.8}
    with httpx.Client(base_url=server.url) as client:
        for _ in range(25):
            assert client.post("/predict", json=ride).status_code == 200
        assert client.post("/predict", json={**ride, "DOLocationID": 999}).status_code == 422
    after = httpx.get(f"{server.url}/metrics").text
    delta = sample(after, "duration_http_requests_total", route="/predict", status="200") - sample(
        before, "duration_http_requests_total", route="/predict", status="200"
    )
    assert delta == 25
    assert (
        sample(after, "duration_errors_total", kind="validation")
        - sample(before, "duration_errors_total", kind="validation")
        == 1
    )


def test_stops_cleanly_on_sigterm(model_path: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path, "--model", str(model_path))
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert server.stop() in CLEAN_EXIT
    log = server.log.read_text()
    assert "Application shutdown complete" in log
    assert "Finished server process" in log
    assert "Traceback" not in log


def test_missing_model_keeps_the_process_up(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--model", str(tmp_path / "none.zip"), expect_ready=False)
    try:
        assert httpx.get(f"{server.url}/health").status_code == 200
        ready = httpx.get(f"{server.url}/ready").json()
        assert ready["reason"] == f"model file not found: {tmp_path / 'none.zip'}"
        response = httpx.post(
            f"{server.url}/predict",
            json={"PULocationID": 1, "DOLocationID": 2, "trip_distance": 1.0},
        )
        assert response.status_code == 503
    finally:
        assert server.stop() in CLEAN_EXIT


def test_two_workers_share_one_metrics_view(model_path: Path, tmp_path: Path) -> None:
    server = start_server(tmp_path, "--model", str(model_path), "--workers", "2")
    try:
        ride = {"PULocationID": 74, "DOLocationID": 75, "trip_distance": 0.8}
        for _ in range(40):  # a new connection each time, so both workers get requests
            assert httpx.post(f"{server.url}/predict", json=ride).status_code == 200
        text = httpx.get(f"{server.url}/metrics").text
        assert sample(text, "duration_http_requests_total", route="/predict", status="200") == 40
    finally:
        assert server.stop() in CLEAN_EXIT


def test_clients_that_hang_up_are_not_internal_errors(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    body = b'{"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}'
    request = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    for _ in range(20):  # two pipelined requests, then hang up without reading
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(request * 2)
    time.sleep(0.5)
    assert (
        httpx.post(
            f"{server.url}/predict",
            json={"PULocationID": 1, "DOLocationID": 2, "trip_distance": 1.0},
        ).status_code
        == 200
    )
    text = httpx.get(f"{server.url}/metrics").text
    assert sample(text, "duration_errors_total", kind="internal") == 0
    assert "Traceback" not in server.log.read_text()


def test_restart_with_workers_starts_from_zero(model_path: Path, tmp_path: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    ride = {"PULocationID": 74, "DOLocationID": 75, "trip_distance": 0.8}
    first = start_server(tmp_path, "--model", str(model_path), "--workers", "2", env=env)
    try:
        for _ in range(5):
            assert httpx.post(f"{first.url}/predict", json=ride).status_code == 200
    finally:
        assert first.stop() in CLEAN_EXIT
    second = start_server(tmp_path, "--model", str(model_path), "--workers", "2", env=env)
    try:
        text = httpx.get(f"{second.url}/metrics").text
        assert sample(text, "duration_http_requests_total", route="/predict", status="200") == 0
    finally:
        assert second.stop() in CLEAN_EXIT
