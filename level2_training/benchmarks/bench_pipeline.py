"""Benchmark: the level-2 pipeline's wall time per step, and what MLflow adds to training.

On the bundled months (train green 2021-01, validate 2021-02) it runs, in fresh temporary
folders, each ``--repeat`` times:

- the pipeline with the embedded SQLite store (validation, four candidates as nested runs with
  plots, logging the best with a signature and input example, registry, aliases);
- the same candidates without MLflow: ``duration_core.train_model`` per candidate (read, fit,
  score), which is what level 1's ``duration-train`` does.

It prints the fastest pipeline run's step table and the ratio of the two totals. Usage:
``python level2_training/benchmarks/bench_pipeline.py [--repeat 3]`` (or ``tox -e bench-pipeline``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time

from duration_core import train_model
from duration_training import PipelineConfig, run_pipeline


def pipeline_once() -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        start = time.perf_counter()
        result = run_pipeline(["green:2021-01"], "green:2021-02", config=PipelineConfig())
        return time.perf_counter() - start, result.steps.render()


def plain_once(candidates: tuple[str, ...]) -> float:
    start = time.perf_counter()
    for name in candidates:
        train_model("green:2021-01", "green:2021-02", model=name)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the fastest counts")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    candidates = PipelineConfig().candidates
    plain_once(candidates)  # warm the imports and the page cache for both
    runs = [pipeline_once() for _ in range(args.repeat)]
    tracked, table = min(runs)
    plain = min(plain_once(candidates) for _ in range(args.repeat))
    print(table)
    print(
        f"\npipeline with MLflow tracking and registry: {tracked:.2f} s (fastest of {args.repeat})"
    )
    print(f"same candidates without MLflow (duration_core.train_model): {plain:.2f} s")
    print(f"tracking and registration multiply the time by {tracked / plain:.2f} "
          f"(+{tracked - plain:.2f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
