"""``duration-router``: the A/B router, one uvicorn process."""

from __future__ import annotations

import argparse
import copy
import logging
import logging.config
import os
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn
import uvicorn.config
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from duration_deployment.config import RouterSettings
from duration_deployment.journal import JournalError
from duration_deployment.log_migrations import SchemaError

ROUTER_EPILOG = """environment (an option given on the command line wins):
  DURATION_ROUTER_TOKEN          the control token (required, at least 16 characters)
  --tracking-uri                 DURATION_ROUTER_TRACKING_URI, else MLFLOW_TRACKING_URI,
                                 else sqlite:///mlflow.db (level 2's embedded store)
  --prediction-log               DURATION_ROUTER_PREDICTION_LOG_URL (sqlite:///prediction_log.db),
                                 upgraded to the code's schema at start (duration-deploy db)
  DURATION_ROUTER_LOG_JOURNAL_DIR  the log's crash journal (./prediction-log-journal)
  --host, --port                 DURATION_ROUTER_HOST, DURATION_ROUTER_PORT (127.0.0.1:8100)
  --log-level                    DURATION_ROUTER_LOG_LEVEL
  every other setting            DURATION_ROUTER_<NAME>: see duration_deployment.config
At start-up the router deploys the registry's champion (and challenger) aliases.

example:
  duration-pipeline run --train green:2021-01 --val green:2021-02
  export DURATION_ROUTER_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe())')
  duration-router --port 8100
"""


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging set-up, extended to the project's packages."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    for name in ("duration_deployment", "duration_service", "duration_core", "duration_training"):
        config["loggers"][name] = {
            "handlers": ["default"],
            "level": level.upper(),
            "propagate": False,
        }
    return config


# -- duration-router --------------------------------------------------------------------------


def build_router_parser() -> argparse.ArgumentParser:
    """The command line of ``duration-router``."""
    parser = argparse.ArgumentParser(
        prog="duration-router",
        description="Serve registered versions of the trip-duration model behind an A/B router.",
        epilog=ROUTER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tracking-uri", help="MLflow tracking/registry URI")
    parser.add_argument("--model-name", help="registered model (default nyc-taxi-duration)")
    parser.add_argument("--prediction-log", help="SQLAlchemy URL of the prediction log")
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8100)")
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error", "critical"],
        help="default info",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``duration-router``; returns the exit code (2 for bad options or settings)."""
    parser = build_router_parser()
    args = parser.parse_args(argv)
    # One OpenMP thread per prediction: the router predicts a few rides at a time, where
    # OpenMP's thread team is pure overhead, and on a busy machine its spinning threads made
    # a gbm smoke test of 9 rides take 5 s instead of 5 ms. Set before scikit-learn loads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    overrides = {
        "tracking_uri": args.tracking_uri,
        "model_name": args.model_name,
        "prediction_log_url": args.prediction_log,
        "host": args.host,
        "port": args.port,
        "log_level": args.log_level,
    }
    try:
        settings = RouterSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(map(str, error["loc"]))
            hint = " (set DURATION_ROUTER_TOKEN)" if name == "token" else ""
            problems.append(f"{name}: {error['msg']}{hint}")
        parser.error("; ".join(problems))
    logging.config.dictConfig(log_config(settings.log_level))
    from duration_deployment.main import create_app, prediction_log
    from duration_deployment.prediction_log import database_error

    # Opened here, before uvicorn, so that a log the router cannot use (a newer schema, a
    # journal in use, a database down) stops it with one line instead of a traceback.
    log = prediction_log(settings)
    try:
        log.open()
    except (SchemaError, JournalError) as exc:  # their messages name the log
        print(f"duration-router: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        reason = database_error(exc)
        print(f"duration-router: the prediction log {log.database}: {reason}", file=sys.stderr)
        return 1

    # One process: the routing table lives in its memory (scale out with one router per
    # replica reading the same registry; see the README).
    uvicorn.run(
        create_app(settings, log=log),
        host=settings.host,
        port=settings.port,
        log_config=log_config(settings.log_level),
        log_level=settings.log_level,
        access_log=settings.access_log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
