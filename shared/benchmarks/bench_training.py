"""Benchmark: read + features + fit, duration_core against the course's method.

The course's method is the DataTalksClub mlops-zoomcamp ``02-experiment-tracking``
notebook's ``read_dataframe`` (read every column, ``apply`` a lambda for the duration, cast the
zone IDs to ``str``) followed by ``to_dict(orient="records")`` + ``DictVectorizer`` +
``LinearRegression``. ``duration_core`` reads only the columns it needs and fits one pipeline
(``RideFeatures`` -> ``OneHotEncoder`` -> ``LinearRegression``).

Sizes: the bundled green 2021-01 file (76,518 rides) and a 3,000,000-ride month made by
resampling its raw rows with replacement (seed 42). Each method runs in its own process, so
its peak memory (``ru_maxrss``) is its own; both models are then scored on green 2021-02.

Usage: ``python shared/benchmarks/bench_training.py [--rows 3000000] [--repeat 3] [--json]``
(or ``tox -e bench``). Prints a table; exits 1 if the RMSEs disagree by more than 1e-6.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from duration_core import build_pipeline, evaluate, load_trips
from duration_core.datasets import TripMonth, bundled_path

JANUARY = bundled_path(TripMonth("green", 2021, 1))
FEBRUARY = bundled_path(TripMonth("green", 2021, 2))


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB.

    Linux's ``VmHWM`` belongs to this process image; ``ru_maxrss`` would also count the
    parent's peak from before ``exec``, so it is only the fallback on other systems.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def course_read_dataframe(filename: str) -> pd.DataFrame:
    """The course's ``read_dataframe`` (02-experiment-tracking/duration-prediction.ipynb)."""
    df = pd.read_parquet(filename)
    df["duration"] = df.lpep_dropoff_datetime - df.lpep_pickup_datetime
    df.duration = df.duration.apply(lambda td: td.total_seconds() / 60)
    df = df[(df.duration >= 1) & (df.duration <= 60)]
    categorical = ["PULocationID", "DOLocationID"]
    df[categorical] = df[categorical].astype(str)
    return df


def run_course(path: str) -> dict[str, object]:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LinearRegression

    timings = {}
    base = peak_rss_mib()
    start = time.perf_counter()
    df = course_read_dataframe(path)
    df["PU_DO"] = df["PULocationID"] + "_" + df["DOLocationID"]
    timings["read"] = time.perf_counter() - start

    start = time.perf_counter()
    dicts = df[["PU_DO", "trip_distance"]].to_dict(orient="records")
    dv = DictVectorizer()
    X = dv.fit_transform(dicts)
    timings["features"] = time.perf_counter() - start

    start = time.perf_counter()
    lr = LinearRegression().fit(X, df["duration"].to_numpy())
    timings["fit"] = time.perf_counter() - start
    peak = peak_rss_mib()

    val = course_read_dataframe(str(FEBRUARY))
    val["PU_DO"] = val["PULocationID"] + "_" + val["DOLocationID"]
    X_val = dv.transform(val[["PU_DO", "trip_distance"]].to_dict(orient="records"))
    rmse = evaluate(val["duration"].to_numpy(), lr.predict(X_val)).rmse
    return {"rows": len(df), "timings": timings, "peak_mib": peak, "base_mib": base, "rmse": rmse}


def run_core(path: str) -> dict[str, object]:
    timings = {}
    base = peak_rss_mib()
    start = time.perf_counter()
    rides = load_trips(path).rides
    timings["read"] = time.perf_counter() - start

    # Exactly what Pipeline.fit does, split so each stage gets its own time.
    pipeline = build_pipeline("linear")
    start = time.perf_counter()
    X = pipeline[:-1].fit_transform(rides)
    timings["features"] = time.perf_counter() - start

    start = time.perf_counter()
    pipeline[-1].fit(X, rides["duration"].to_numpy())
    timings["fit"] = time.perf_counter() - start
    peak = peak_rss_mib()

    val = load_trips(FEBRUARY).rides
    rmse = evaluate(val["duration"].to_numpy(), pipeline.predict(val)).rmse
    return {
        "rows": len(rides),
        "timings": timings,
        "peak_mib": peak,
        "base_mib": base,
        "rmse": rmse,
    }


def resampled_month(rows: int, folder: Path) -> Path:
    """A month of ``rows`` rides drawn with replacement from green 2021-01's raw rows."""
    january = pd.read_parquet(JANUARY)
    picks = np.random.default_rng(42).integers(0, len(january), size=rows)
    path = folder / f"green_tripdata_resampled_{rows}.parquet"
    january.iloc[picks].reset_index(drop=True).to_parquet(path, index=False)
    return path


def measure(method: str, path: Path, repeat: int) -> dict[str, object]:
    """Run one method ``repeat`` times in a fresh process; keep the fastest run's figures.

    The fastest of several runs is the usual estimate of a cost (as ``timeit`` does): the
    slower runs measure what else the machine was doing. Peak memory is the process's peak
    over all runs, which is the peak of one run since each frees what it built.
    """
    done = subprocess.run(
        [sys.executable, __file__, "--child", method, str(path), "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description="duration_core vs the course's method")
    parser.add_argument("--rows", type=int, default=3_000_000, help="rides in the large month")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per method; the fastest counts (default 3)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        method, path = args.child
        run = run_core if method == "core" else run_course
        runs = [run(path) for _ in range(max(args.repeat, 1))]
        fastest = min(runs, key=lambda r: sum(r["timings"].values()))
        print(json.dumps({**fastest, "peak_mib": peak_rss_mib()}))
        return 0

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, path in [
            ("green 2021-01", JANUARY),
            (f"{args.rows:,} resampled", resampled_month(args.rows, Path(tmp))),
        ]:
            course = measure("course", path, args.repeat)
            core = measure("core", path, args.repeat)
            results.append({"data": label, "course": course, "core": core})

    ok = True
    print(f"{'data':<22}{'method':<8}{'rows':>11}{'read':>8}{'features':>10}{'fit':>8}"
          f"{'total':>8}{'peak MiB':>10}{'val RMSE':>14}")  # fmt: skip
    for result in results:
        for method in ("course", "core"):
            r = result[method]
            t = r["timings"]
            total = sum(t.values())
            print(
                f"{result['data']:<22}{method:<8}{r['rows']:>11,}{t['read']:>7.2f}s"
                f"{t['features']:>9.2f}s{t['fit']:>7.2f}s{total:>7.2f}s{r['peak_mib']:>10.0f}"
                f"{r['rmse']:>14.10f}"
            )
        course, core = result["course"], result["core"]
        speedup = sum(course["timings"].values()) / sum(core["timings"].values())
        memory = core["peak_mib"] / course["peak_mib"]
        agree = abs(core["rmse"] - course["rmse"]) / course["rmse"]
        ok &= agree <= 1e-6
        result.update(speedup=speedup, memory_ratio=memory, rmse_rel_diff=agree)
        print(
            f"  -> core is {speedup:.1f}x faster end to end, peak memory {memory:.0%} of the "
            f"course's, val RMSE relative difference {agree:.1e} "
            f"({'agree' if agree <= 1e-6 else 'DIFFER'})"
        )
    if args.json:
        print(json.dumps(results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
