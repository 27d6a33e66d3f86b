"""``duration-score``: batch deployment of a registered model version.

Scores whole TLC months and writes the predictions as parquet partitioned
``service=/year=/month=`` (see :mod:`duration_deployment.batch`). Progress goes to stderr; the
summary to stdout, as text or, with ``--json``, one JSON object (on failure
``{"error", "published"}``: the months published before it). Exit codes: 0 done, 1 the job
failed (the message names the model, month or folder), 2 bad usage, 130 interrupted (Ctrl-C or
SIGTERM; the staging folder is removed, published months stay).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from duration_core.trip_batches import DEFAULT_BATCH_ROWS
from duration_deployment.batch import ScoreError, ScoreSummary, score_months
from duration_deployment.batch.job import ENGINES

EPILOG = """examples:
  duration-score --model models:/nyc-taxi-duration@champion --month green:2021-03 --out scored
  duration-score --model models:/nyc-taxi-duration/2 --month green:2021-02 --month green:2021-03 \\
      --out scored --engine spark --master local[2]

environment:
  MLFLOW_TRACKING_URI   the registry when --tracking-uri is not given (else sqlite:///mlflow.db)
  DURATION_CACHE_DIR    where downloaded TLC months are kept
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``duration-score``."""
    parser = argparse.ArgumentParser(
        prog="duration-score",
        description="Score whole TLC months with a registered model version (batch deployment).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        required=True,
        help="models:/nyc-taxi-duration@ALIAS, models:/nyc-taxi-duration/VERSION or a version",
    )
    parser.add_argument(
        "--month",
        action="append",
        required=True,
        metavar="SERVICE:YYYY-MM",
        help="a TLC month, e.g. green:2021-03 (repeat for several)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the output dataset's folder")
    parser.add_argument("--engine", choices=ENGINES, default="pandas", help="default pandas")
    parser.add_argument(
        "--master", default="local[*]", help="Spark master URL (spark engine; default local[*])"
    )
    parser.add_argument(
        "--spark-conf",
        type=_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting, e.g. spark.driver.memory=4g (repeatable)",
    )
    parser.add_argument("--tracking-uri", help="the MLflow registry")
    parser.add_argument(
        "--batch-rows",
        type=_positive_int,
        default=DEFAULT_BATCH_ROWS,
        help=f"rows per record batch, pandas engine (default {DEFAULT_BATCH_ROWS:,})",
    )
    parser.add_argument(
        "--no-download", action="store_true", help="use bundled or cached months only"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def render(summary: ScoreSummary) -> str:
    """The summary as text lines."""
    model = summary.model
    lines = [
        f"model   {model.uri} -> {model.name} v{model.version} (run {model.run_id})",
        f"engine  {summary.engine}",
    ]
    for month in summary.months:
        lines.append(
            f"{month.month}: {month.rows_read:,} rows read, {month.rows_kept:,} kept by the "
            f"filter, {month.skipped_inputs:,} skipped (inputs out of range), "
            f"{month.rows_written:,} written to {month.path} ({month.seconds:.1f} s)"
        )
    lines.append(
        f"total   {summary.rows_written:,} rides in {summary.seconds:.1f} s "
        f"({summary.rows_per_second:,.0f} rides/s); output {summary.output}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``duration-score``; 0 on success, 1 when the job fails, 2 for bad usage."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("mlflow", "py4j", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # PySpark 4 warns on every UDF that it is not tested with pandas 3; the engines' outputs
    # are compared in the tests.
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    signal.signal(signal.SIGTERM, _interrupted)  # clean up as on Ctrl-C (timeout, systemd, k8s)
    try:
        summary = score_months(
            args.model,
            args.month,
            args.out,
            engine=args.engine,
            tracking_uri=args.tracking_uri,
            download=not args.no_download,
            batch_rows=args.batch_rows,
            master=args.master,
            spark_conf=dict(args.spark_conf),
        )
    except ScoreError as exc:
        print(f"duration-score: {exc}", file=sys.stderr)
        published = [m.month for m in exc.published]
        if published:
            print(f"duration-score: published before the failure: {', '.join(published)}",
                  file=sys.stderr)  # fmt: skip
        if args.json:
            print(json.dumps({"error": str(exc), "published": [asdict(m) for m in exc.published]}))
        return 1
    except KeyboardInterrupt:
        print("duration-score: interrupted; the month being scored was not published",
              file=sys.stderr)  # fmt: skip
        return 130
    print(json.dumps(summary.as_dict()) if args.json else render(summary))
    return 0


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
