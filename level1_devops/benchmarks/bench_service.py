"""Benchmark: the level-1 service against the course's Flask web service, on real rides.

With models trained on the bundled green 2021-01 data, it starts each server (1 worker, then 2),
drives it with wrk from a separate process (32 connections, 15 s by default) and prints
throughput and p50/p95/p99 latency:

- ``duration-serve`` ``POST /predict`` with one real ride per request;
- ``duration-serve`` ``POST /predict/batch`` with 1,000 real rides (green 2021-02) per request;
- the course's shape (``flask_reference.py``: Flask + gunicorn, unpickled ``DictVectorizer`` +
  ``LinearRegression``), ``POST /predict`` with the same ride, same number of workers.

It also times one 1,000-ride batch at a time (no concurrency): the latency a caller sees.
Needs ``wrk`` (Debian/Ubuntu: ``apt-get install wrk``), Flask and gunicorn
(``pip install flask gunicorn``; ``tox -e bench-service`` installs them).

Usage: ``python level1_devops/benchmarks/bench_service.py [--seconds 15] [--connections 32]``
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LinearRegression

from duration_core import read_trips, save_model, train_model

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
RIDE = {"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(folder: Path) -> dict[str, Path]:
    """Train both models on green 2021-01; write request bodies."""
    result = train_model("green:2021-01", "green:2021-02", model="linear")
    service_model = folder / "linear.zip"
    save_model(result.pipeline, service_model, result.metadata())

    # The course's artifact: (DictVectorizer, LinearRegression) fitted on the same rides.
    rides = result.train[0].rides
    records = [
        {"PU_DO": f"{pu}_{do}", "trip_distance": d}
        for pu, do, d in zip(
            rides.PULocationID, rides.DOLocationID, rides.trip_distance, strict=True
        )
    ]
    dv = DictVectorizer()
    lr = LinearRegression().fit(dv.fit_transform(records), rides.duration.to_numpy())
    reference_model = folder / "lin_reg.bin"
    reference_model.write_bytes(pickle.dumps((dv, lr)))

    single = folder / "ride.json"
    single.write_text(json.dumps(RIDE))
    february = read_trips("green:2021-02").head(1000)
    batch = folder / "batch.json"
    batch.write_text(
        json.dumps(
            {
                "rides": [
                    {
                        "PULocationID": int(r.PULocationID),
                        "DOLocationID": int(r.DOLocationID),
                        "trip_distance": float(r.trip_distance),
                    }
                    for r in february.itertuples()
                ]
            }
        )
    )
    return {
        "service_model": service_model,
        "reference_model": reference_model,
        "single": single,
        "batch": batch,
    }


def start(command: list[str], url: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{command[0]} exited:\n{log.read_text()}")
        try:
            httpx.post(url, json=RIDE, timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{command[0]} did not start:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(url: str, body: Path, seconds: int, connections: int) -> dict[str, float]:
    """Run wrk against ``url`` and return its JSON figures plus requests per second."""
    done = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(HERE / "wrk_report.lua"),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "WRK_BODY": str(body)},
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["rps"] = figures["requests"] / figures["seconds"]
    return figures


def sequential_batch_ms(url: str, body: Path, repeat: int = 50) -> float:
    """Median time of one 1,000-ride batch request at a time, milliseconds."""
    content = body.read_bytes()
    headers = {"content-type": "application/json"}
    times = []
    with httpx.Client() as client:
        client.post(url, content=content, headers=headers).raise_for_status()
        for _ in range(repeat):
            start = time.perf_counter()
            client.post(url, content=content, headers=headers).raise_for_status()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = prepare(folder)
        for workers in args.workers:
            port = free_port()
            service = start(
                [
                    str(BIN / "duration-serve"),
                    "--model",
                    str(files["service_model"]),
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                    "--log-level",
                    "warning",
                ],
                f"http://127.0.0.1:{port}/predict",
                dict(os.environ),
                folder / "serve.log",
            )
            try:
                base = f"http://127.0.0.1:{port}"
                rows.append(
                    (
                        "duration-serve /predict",
                        workers,
                        wrk(f"{base}/predict", files["single"], args.seconds, args.connections),
                    )
                )
                rows.append(
                    (
                        "duration-serve /predict/batch x1000",
                        workers,
                        wrk(
                            f"{base}/predict/batch", files["batch"], args.seconds, args.connections
                        ),
                    )
                )
                if workers == args.workers[0]:
                    one_batch = sequential_batch_ms(f"{base}/predict/batch", files["batch"])
            finally:
                stop(service)

            port = free_port()
            env = {**os.environ, "REFERENCE_MODEL": str(files["reference_model"])}
            reference = start(
                [
                    str(BIN / "gunicorn"),
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    str(workers),
                    "--chdir",
                    str(HERE),
                    "flask_reference:app",
                ],
                f"http://127.0.0.1:{port}/predict",
                env,
                folder / "gunicorn.log",
            )
            try:
                rows.append(
                    (
                        "course Flask+gunicorn /predict",
                        workers,
                        wrk(
                            f"http://127.0.0.1:{port}/predict",
                            files["single"],
                            args.seconds,
                            args.connections,
                        ),
                    )
                )
            finally:
                stop(reference)

    print(
        f"\n{args.connections} connections, {args.seconds} s per run, wrk -t1, "
        f"{os.cpu_count()} cores"
    )
    print(
        f"{'server and route':<38}{'workers':>8}{'req/s':>10}{'rides/s':>10}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
    )
    for name, workers, f in rows:
        rides = f["rps"] * (1000 if "x1000" in name else 1)
        print(
            f"{name:<38}{workers:>8}{f['rps']:>10,.0f}{rides:>10,.0f}{f['p50_ms']:>9.1f}"
            f"{f['p95_ms']:>9.1f}{f['p99_ms']:>9.1f}{f['non_2xx'] + f['socket_errors']:>8}"
        )
    for workers in args.workers:
        ours = next(f for n, w, f in rows if w == workers and n == "duration-serve /predict")
        ref = next(f for n, w, f in rows if w == workers and n.startswith("course"))
        print(
            f"{workers} worker(s): duration-serve answers {ours['rps'] / ref['rps']:.2f}x the "
            f"course's single-ride requests/s"
        )
    print(f"one 1,000-ride batch at a time: median {one_batch:.1f} ms")
    if args.json:
        print(json.dumps({"rows": rows, "one_batch_ms": one_batch}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
