"""``duration-pipeline``: run the level-2 training pipeline, or export a registered model."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlflow.artifacts
from pydantic import ValidationError
from pydantic_settings import SettingsError

from duration_core import DurationCoreError
from duration_training.config import PipelineConfig
from duration_training.errors import DataValidationError, PipelineError
from duration_training.export import export_model
from duration_training.pipeline import run_pipeline

EPILOG = """examples:
  duration-pipeline run --train green:2021-01 --val green:2021-02
  duration-pipeline run --train green:2021-01 --train green:2021-02 --val green:2021-03 --json
  duration-pipeline export --model-uri models:/nyc-taxi-duration@champion --out models/champion.zip
  duration-serve --model models/champion.zip

SOURCE is a parquet path or a month SERVICE:YYYY-MM (bundled, cached or downloaded).
Tracking: --tracking-uri, else $MLFLOW_TRACKING_URI, else the embedded sqlite:///mlflow.db
(artifacts in ./mlartifacts); see the runs with
  mlflow ui --backend-store-uri sqlite:///mlflow.db
Thresholds come from the environment: DURATION_PIPELINE_MIN_RIDES (1000),
DURATION_PIPELINE_MIN_KEPT_SHARE (0.9), DURATION_PIPELINE_MAX_TRIP_DISTANCE (500 miles),
DURATION_PIPELINE_MIN_PLAUSIBLE_DISTANCE_SHARE (0.99), DURATION_PIPELINE_CHAMPION_MARGIN (0.01),
DURATION_PIPELINE_EXPERIMENT, DURATION_PIPELINE_MODEL_NAME.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``duration-pipeline``."""
    parser = argparse.ArgumentParser(
        prog="duration-pipeline",
        description="Level 2: a validated, tracked training pipeline with an MLflow registry.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="ingest, validate, train candidates, register the best, decide the champion",
        description="Ingest the months, validate them, train every candidate as a nested MLflow "
        "run, register the best as challenger and move champion if it is better.",
    )
    run.add_argument("--train", action="append", required=True, metavar="SOURCE",
                     help="training month or file; repeat for several")  # fmt: skip
    run.add_argument("--val", required=True, metavar="SOURCE", help="validation month or file")
    run.add_argument(
        "--candidates",
        help="comma-separated models to compare (default linear,lasso,ridge,gbm)",
    )
    run.add_argument(
        "--champion-margin", type=float,
        help="relative RMSE improvement a new version needs to become champion (default 0.01)",
    )  # fmt: skip
    export = commands.add_parser(
        "export",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="write a registered model as the core artifact that duration-serve serves",
        description="Write a registered model as a duration-core artifact (the level-2 "
        "hand-off to the level-1 service).",
    )
    export.add_argument("--model-uri", required=True,
                        help="models:/NAME@ALIAS or models:/NAME/VERSION")  # fmt: skip
    export.add_argument("--out", required=True, type=Path, help="artifact path to write")
    for sub in (run, export):
        sub.add_argument(
            "--tracking-uri",
            help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
        )
        sub.add_argument("--json", action="store_true",
                         help="print one JSON summary line last on stdout")  # fmt: skip
        sub.add_argument("-q", "--quiet", action="store_true", help="only warnings on stderr")
    run.add_argument("--cache-dir", help="cache folder for downloaded months")
    run.add_argument(
        "--report-dir",
        type=Path,
        help="also write the step table, the JSON summary and the best candidate's plots here "
        "(what the scheduled workflow uploads)",
    )
    run.add_argument(
        "--no-download",
        action="store_true",
        help="fail instead of downloading a month that is not bundled or cached",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``duration-pipeline``; exit code 0 done, 1 a step or check failed, 2 usage or
    an unreachable tracking server."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "export":
        return _export(args)
    overrides: dict[str, Any] = {}
    if args.candidates is not None:
        overrides["candidates"] = tuple(c.strip() for c in args.candidates.split(",") if c.strip())
    if args.champion_margin is not None:
        overrides["champion_margin"] = args.champion_margin
    try:
        config = PipelineConfig(**overrides)
    except SettingsError as exc:
        parser.error(f"{exc} (check the DURATION_PIPELINE_* environment variables)")
    except ValidationError as exc:
        parser.error(
            "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
        )
    try:
        result = run_pipeline(
            args.train, args.val, config=config, tracking_uri=args.tracking_uri,
            cache_dir=args.cache_dir, download=not args.no_download,
        )  # fmt: skip
    except KeyboardInterrupt:
        print("duration-pipeline: interrupted; the run is marked KILLED, nothing was registered",
              file=sys.stderr)  # fmt: skip
        return 130
    except PipelineError as exc:
        if args.json:
            print(json.dumps({"error": str(exc), "step": exc.step}))
        steps = getattr(exc, "steps", None)
        if steps is not None:
            print(steps.render(), file=sys.stderr)
            _write_report(
                args.report_dir, steps.render() + f"\n\nerror in step {exc.step}: {exc}\n"
            )
        print(f"duration-pipeline: error in step {exc.step}: {exc}", file=sys.stderr)
        if isinstance(exc, DataValidationError):
            for check in exc.report.failures:
                print(f"  {check.source}: {check.name}: {check.detail}", file=sys.stderr)
        return 2 if exc.step == "connect" else 1
    except DurationCoreError as exc:
        print(f"duration-pipeline: error: {exc}", file=sys.stderr)
        return 1
    print(result.steps.render())
    for c in result.candidates:
        print(f"{c.name:>8}: val RMSE {c.metrics.rmse:.4f} min, MAE {c.metrics.mae:.4f}, "
              f"R² {c.metrics.r2:.4f}, fit {c.fit_seconds:.1f} s")  # fmt: skip
    print(f"registered {config.model_name} "
          f"v{result.version} (run {result.run_id}); aliases moved: "
          f"{', '.join(result.aliases_moved)}")  # fmt: skip
    print(f"decision: {result.decision}")
    if args.report_dir is not None:
        _write_report(args.report_dir, result.steps.render() + "\n", result.summary())
    if args.report_dir is not None and result.best is not None:
        mlflow.artifacts.download_artifacts(
            run_id=result.best.run_id, artifact_path="plots", dst_path=str(args.report_dir),
            tracking_uri=result.tracking_uri,
        )  # fmt: skip
    if args.json:
        print(json.dumps(result.summary()))
    return 0


def _write_report(folder: Path | None, steps: str, summary: dict[str, Any] | None = None) -> None:
    """The step table (and the summary) as files, for a CI job to upload."""
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "steps.txt").write_text(steps)
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary, indent=2))


def _export(args: argparse.Namespace) -> int:
    try:
        summary = export_model(args.model_uri, args.out, tracking_uri=args.tracking_uri)
    except DurationCoreError as exc:
        step = getattr(exc, "step", "export")
        print(f"duration-pipeline: error in step {step}: {exc}", file=sys.stderr)
        return 2 if step == "connect" else 1
    print(
        f"exported {args.model_uri} (v{summary['registered_version']}, {summary['model']}) to "
        f"{summary['model_path']} (sha256 {summary['sha256'][:12]})"
    )
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
