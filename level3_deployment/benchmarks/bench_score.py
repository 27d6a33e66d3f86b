"""Benchmark: ``duration-score``'s engines against the course's ``score.py``, up to 30M rides.

In a temporary folder it trains the course's linear model with the level-2 pipeline
(``duration-pipeline run``, green 2021-01/02, embedded ``sqlite:///mlflow.db``) and makes the
inputs once: the bundled green 2021-03 file (83,827 rows) and months of 3,000,000 and
30,000,000 rows resampled with replacement (seed 42) from its raw rows, every TLC column kept,
written as parquet in row groups of 1,000,000.

Each method then scores each input in its own process, while this script samples the resident
memory of that process and all its children (the Spark JVM and Python workers included) from
``/proc`` every 0.2 s; the peak is the figure reported:

- ``pandas``: ``score_months(engine="pandas")``, record batches of 250,000 rows;
- ``spark``: ``score_months(engine="spark", master="local[*]")``;
- ``course``: DataTalksClub mlops-zoomcamp ``04-deployment/batch/score.py``'s method: read the
  whole file with pandas, compute the duration, filter 1-60 min, ``to_dict(orient="records")``,
  ``predict``, write one parquet file. It runs under an address-space limit (``--course-limit-gib``,
  default 12) so that where it does not fit it stops with a ``MemoryError`` instead of taking the
  machine down; the table says where.

Rows/s count the rides written over the whole process (start-up and model loading included:
what a scheduled job costs). The Spark output is compared with the pandas engine's ride by
ride (same ride ids, predictions within 1e-9).

Usage: ``python level3_deployment/benchmarks/bench_score.py [--sizes 3000000,30000000]
[--engines pandas,spark,course] [--json]`` (or ``tox -e bench-score``; Spark needs Java).
Exits 1 when a target is missed: the pandas engine's peak memory under 2 GiB at the largest
size, the Spark engine's predictions equal to the pandas engine's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from duration_core.datasets import TripMonth, bundled_path

BIN = Path(sys.executable).parent
MARCH = TripMonth("green", 2021, 3)
MODEL_URI = "models:/nyc-taxi-duration@champion"
PANDAS_PEAK_TARGET_MIB = 2 * 1024
ROW_GROUP = 1_000_000
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- the methods, each run in a child process ---------------------------------------------------


def child(method: str, source: str, out: str, registry: str) -> dict[str, Any]:
    """Run one method on one input (in this process) and return its figures."""
    started = time.perf_counter()
    if method == "course":
        rows = course_score(Path(source), Path(out), registry)
    else:
        from duration_deployment.batch import MonthSource, score_months

        summary = score_months(
            MODEL_URI, [MonthSource(MARCH, Path(source))], Path(out),
            engine=method, tracking_uri=registry,  # type: ignore[arg-type]
        )  # fmt: skip
        rows = summary.rows_written
    return {"rows": rows, "seconds": time.perf_counter() - started}


def course_score(path: Path, out: Path, registry: str) -> int:
    """The course's ``score.py``: the whole month in memory, dicts, predict, one file."""
    import mlflow.artifacts
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from duration_deployment.registry import load_pipeline

    client = MlflowClient(tracking_uri=registry, registry_uri=registry)
    version = client.get_model_version_by_alias("nyc-taxi-duration", "champion")
    folder = mlflow.artifacts.download_artifacts(
        artifact_uri=client.get_model_version_download_uri("nyc-taxi-duration", version.version),
        dst_path=tempfile.mkdtemp(),
        tracking_uri=registry,
    )
    model = load_pipeline(Path(folder))
    df = pd.read_parquet(path)
    df["duration"] = (df.lpep_dropoff_datetime - df.lpep_pickup_datetime).dt.total_seconds() / 60
    df = df[(df.duration >= 1) & (df.duration <= 60)].copy()
    df = df.dropna(subset=["PULocationID", "DOLocationID", "trip_distance"])
    df["ride_id"] = "2021/03_" + df.index.astype("str")
    dicts = df[["PULocationID", "DOLocationID", "trip_distance"]].to_dict(orient="records")
    y_pred = model.predict(dicts)
    result = pd.DataFrame(
        {
            "ride_id": df["ride_id"],
            "lpep_pickup_datetime": df["lpep_pickup_datetime"],
            "PULocationID": df["PULocationID"],
            "DOLocationID": df["DOLocationID"],
            "actual_duration": df["duration"],
            "predicted_duration": y_pred,
            "diff": df["duration"] - y_pred,
            "model_version": str(version.version),
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    result.to_parquet(out / "scored.parquet", index=False)
    return len(result)


# -- measuring ----------------------------------------------------------------------------------


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    family, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        kids = [c for c, p in parents.items() if p == pid and c not in family]
        family.update(kids)
        frontier.extend(kids)
    total = 0
    for pid in family:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def measure(method: str, source: Path, out: Path, registry: str, limit_gib: float) -> dict:
    """Run ``method`` in a child process; its figures, peak tree memory (MiB) and outcome."""

    def limit() -> None:
        if method == "course" and limit_gib > 0:
            size = int(limit_gib * 1024**3)
            resource.setrlimit(resource.RLIMIT_AS, (size, size))

    command = [sys.executable, __file__, "--child", method, str(source), str(out), registry]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    done.set()
    sampler.join()
    result: dict[str, Any] = {"method": method, "peak_mib": peak / 2**20}
    if process.returncode == 0:
        result.update(json.loads(stdout.strip().splitlines()[-1]))
        result["rows_per_second"] = result["rows"] / result["seconds"]
    else:
        tail = stderr.strip().splitlines()[-1:] or ["(no output)"]
        result["failed"] = "MemoryError" if "MemoryError" in stderr else tail[0][:200]
    return result


# -- the inputs -----------------------------------------------------------------------------------


def resampled(rows: int, folder: Path) -> Path:
    """``rows`` rows drawn with replacement (seed 42) from green 2021-03's raw rows."""
    march = pq.read_table(bundled_path(MARCH))
    path = folder / f"green-resampled-{rows}.parquet"
    generator = np.random.default_rng(42)
    with pq.ParquetWriter(path, march.schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            size = min(ROW_GROUP, rows - start)
            writer.write_table(march.take(pa.array(generator.integers(0, len(march), size))))
    return path


def spark_matches_pandas(spark_out: Path, pandas_out: Path) -> float:
    """The largest |prediction difference| between the two outputs, ride by ride (inf when
    their ride ids differ)."""
    tables = []
    for out in (spark_out, pandas_out):
        table = ds.dataset(out, format="parquet", partitioning="hive").to_table(
            columns=["ride_id", "predicted_duration"]
        )
        tables.append(table.sort_by("ride_id"))
    if tables[0]["ride_id"] != tables[1]["ride_id"]:
        return float("inf")
    a, b = (t["predicted_duration"].to_numpy() for t in tables)
    return float(np.abs(a - b).max())


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(*sys.argv[2:6])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000000,30000000", help="resampled sizes, rows")
    parser.add_argument("--engines", default="pandas,spark,course")
    parser.add_argument("--course-limit-gib", type=float, default=12.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    methods = [m.strip() for m in args.engines.split(",") if m.strip()]
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    results: list[dict[str, Any]] = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-score-") as scratch:
        folder = Path(scratch)
        print("training the course's linear model with duration-pipeline ...", flush=True)
        subprocess.run(
            [str(BIN / "duration-pipeline"), "run", "--train", "green:2021-01", "--val",
             "green:2021-02", "--candidates", "linear", "--quiet"],
            cwd=folder, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        registry = f"sqlite:///{folder / 'mlflow.db'}"
        inputs = [("green 2021-03", 83_827, bundled_path(MARCH))]
        for rows in sizes:
            print(f"writing {rows:,} resampled rows ...", flush=True)
            inputs.append((f"resampled {rows:,}", rows, resampled(rows, folder)))
        for label, rows, path in inputs:
            outs: dict[str, Path] = {}
            for method in methods:
                out = folder / f"out-{method}-{rows}"
                print(f"{label}: {method} ...", flush=True)
                result = measure(method, path, out, registry, args.course_limit_gib)
                result.update(input=label, input_rows=rows)
                outs[method] = out
                if "pandas" in outs and method == "spark" and "failed" not in result:
                    result["max_abs_diff_vs_pandas"] = spark_matches_pandas(out, outs["pandas"])
                    ok &= result["max_abs_diff_vs_pandas"] <= 1e-9
                results.append(result)
                print("   " + json.dumps(result), flush=True)
        pandas_largest = [r for r in results if r["method"] == "pandas"][-1:]
        for r in pandas_largest:
            ok &= "failed" not in r and r["peak_mib"] < PANDAS_PEAK_TARGET_MIB

    if args.json:
        print(json.dumps(results))
    else:
        print()
        print(f"{'input':<22} {'method':<7} {'rides':>11} {'seconds':>8} {'rides/s':>9} "
              f"{'peak MiB':>9}  note")  # fmt: skip
        for r in results:
            if "failed" in r:
                print(f"{r['input']:<22} {r['method']:<7} {'-':>11} {'-':>8} {'-':>9} "
                      f"{r['peak_mib']:>9,.0f}  stopped: {r['failed']}")  # fmt: skip
                continue
            note = ""
            if "max_abs_diff_vs_pandas" in r:
                note = f"max |spark - pandas| = {r['max_abs_diff_vs_pandas']:.1e}"
            print(f"{r['input']:<22} {r['method']:<7} {r['rows']:>11,} {r['seconds']:>8.1f} "
                  f"{r['rows_per_second']:>9,.0f} {r['peak_mib']:>9,.0f}  {note}")  # fmt: skip
        print(f"\ntargets: pandas peak < {PANDAS_PEAK_TARGET_MIB:,} MiB at the largest size; "
              f"spark = pandas within 1e-9: {'met' if ok else 'MISSED'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
