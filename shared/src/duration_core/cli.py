"""``duration-train``: train the trip-duration pipeline on TLC months and save the artifact."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from duration_core.artifact import read_metadata, save_model
from duration_core.errors import DurationCoreError, ModelArtifactError
from duration_core.model import REGRESSORS
from duration_core.training import train_model
from duration_core.trips import MAX_DURATION_MINUTES, MIN_DURATION_MINUTES

logger = logging.getLogger("duration_core.cli")

EXAMPLES = """examples:
  duration-train --train green:2021-01 --val green:2021-02 --out models/linear.zip
  duration-train --train data/jan.parquet --train data/feb.parquet --val green:2021-03 \\
      --model ridge --alpha 0.5 --out models/ridge.zip --json

SOURCE is a parquet file path or a month SERVICE:YYYY-MM (service: yellow, green, fhv,
fhvhv). A month is read from the package's bundled sample (green 2021-01..03), else from
the cache folder, else downloaded from the TLC's public trip-data address.
"""


def minutes(text: str) -> float:
    """argparse type: a finite, non-negative number of minutes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of minutes >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``duration-train``."""
    parser = argparse.ArgumentParser(
        prog="duration-train",
        description="Train the trip-duration model (minutes) on NYC TLC trip records, score it "
        "on a validation month and save it as one checked artifact.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--train",
        action="append",
        required=True,
        metavar="SOURCE",
        help="training data: a parquet path or SERVICE:YYYY-MM; repeat to use several months",
    )
    parser.add_argument(
        "--val", required=True, metavar="SOURCE", help="validation data, as for --train"
    )
    parser.add_argument(
        "--model",
        choices=sorted(REGRESSORS),
        default="linear",
        help="regressor: linear (course baseline, default), lasso (alpha 0.01), ridge "
        "(alpha 1.0) or gbm (gradient boosting on target-encoded zone pairs)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="regularisation strength for lasso or ridge (ignored by linear)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="PATH", help="where to write the model artifact"
    )
    parser.add_argument(
        "--min-duration",
        type=minutes,
        default=MIN_DURATION_MINUTES,
        metavar="MINUTES",
        help="shortest ride kept, minutes (default %(default)g, the course's filter)",
    )
    parser.add_argument(
        "--max-duration",
        type=minutes,
        default=MAX_DURATION_MINUTES,
        metavar="MINUTES",
        help="longest ride kept, minutes (default %(default)g, the course's filter)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="cache folder for downloaded months (default $DURATION_CACHE_DIR or "
        "~/.cache/duration-core)",
    )
    parser.add_argument(
        "--no-download",
        action="store_true",
        help="fail instead of downloading a month that is neither bundled nor cached",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object as the last line of stdout (train_rows, val_rows, "
        "val_rmse, model_path, sha256, ...)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="log only warnings and errors on stderr"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``duration-train``; return the exit code (0 ok, 1 bad data or model, 2 usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    if args.alpha is not None and args.model not in ("lasso", "ridge"):
        parser.error(f"--alpha applies to --model lasso or ridge, not {args.model}")
    if args.min_duration > args.max_duration:
        parser.error("--min-duration must not exceed --max-duration")
    params = {"alpha": args.alpha} if args.alpha is not None else {}
    try:
        if args.out.exists():  # fail before training, not after: never overwrite data files
            try:
                read_metadata(args.out)
            except ModelArtifactError:
                raise ModelArtifactError(
                    f"refusing to overwrite {args.out}: it is not a duration-core model artifact"
                ) from None
        result = train_model(
            args.train,
            args.val,
            model=args.model,
            params=params,
            min_duration=args.min_duration,
            max_duration=args.max_duration,
            cache_dir=args.cache_dir,
            download=not args.no_download,
        )
        sha256 = save_model(result.pipeline, args.out, result.metadata(), profile=result.profile)
    except (DurationCoreError, ValueError, OSError) as exc:
        print(f"duration-train: error: {exc}", file=sys.stderr)
        return 1

    metrics = result.val_metrics
    summary = {
        "model": result.model,
        "train": [t.source for t in result.train],
        "val": result.val.source,
        "train_rows": result.train_rows,
        "val_rows": result.val.report.rows_kept,
        "val_rmse": metrics.rmse,
        "val_mae": metrics.mae,
        "val_r2": metrics.r2,
        "model_path": str(args.out.resolve()),
        "sha256": sha256,
        "seconds": {k: round(v, 3) for k, v in result.timings.items()},
    }
    for data in [*result.train, result.val]:
        print(f"{data.source:>16}: {data.report}")
    print(f"model {result.model}: trained on {result.train_rows:,} rides")
    print(
        f"validation on {summary['val_rows']:,} rides: RMSE {metrics.rmse:.4f} min, "
        f"MAE {metrics.mae:.4f} min, R² {metrics.r2:.4f}"
    )
    print(f"saved {summary['model_path']} (sha256 {sha256[:12]})")
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
