"""``duration-serve``: run the trip-duration service with uvicorn."""

from __future__ import annotations

import argparse
import copy
import functools
import inspect
import logging
import logging.config
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
import uvicorn.config
from pydantic import ValidationError
from uvicorn.supervisors import Multiprocess

from duration_service.config import ENV_PREFIX, Settings
from duration_service.main import create_app

logger = logging.getLogger("duration_service.cli")
#: uvicorn's exit code when the server did not start (``uvicorn.main.STARTUP_FAILURE``).
STARTUP_FAILURE = 3

EPILOG = """environment (an option given on the command line wins):
  --model            DURATION_SERVE_MODEL_PATH
  --host, --port     DURATION_SERVE_HOST, DURATION_SERVE_PORT
  --workers          DURATION_SERVE_WORKERS
  --max-batch-size   DURATION_SERVE_MAX_BATCH_SIZE
  --model-sha256     DURATION_SERVE_MODEL_SHA256
  --log-level        DURATION_SERVE_LOG_LEVEL
  --access-log       DURATION_SERVE_ACCESS_LOG
  (no option)        DURATION_SERVE_MAX_BODY_BYTES (default 4 MiB, at least 1024),
                     DURATION_SERVE_ALLOW_VERSION_MISMATCH (default false)
A missing or bad model does not stop the service: /health answers 200, /ready and the
prediction routes answer 503 with the reason.

example:
  duration-train --train green:2021-01 --val green:2021-02 --out models/linear.zip
  duration-serve --model models/linear.zip --port 8000
  curl -s localhost:8000/predict -H 'content-type: application/json' \\
       -d '{"PULocationID": 43, "DOLocationID": 151, "trip_distance": 1.5}'
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``duration-serve``."""
    parser = argparse.ArgumentParser(
        prog="duration-serve",
        description="Serve the trip-duration model (minutes) over HTTP with uvicorn.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", type=Path, help="model artifact from duration-train (default models/model.zip)"
    )
    parser.add_argument(
        "--host", help="interface to bind (default 127.0.0.1; 0.0.0.0 in a container)"
    )
    parser.add_argument("--port", type=int, help="TCP port (default 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (default 1)")
    parser.add_argument(
        "--max-batch-size", type=int, help="most rides per /predict/batch (default 10000)"
    )
    parser.add_argument(
        "--model-sha256",
        help="refuse any artifact whose sha256 does not start with these 12-64 hex digits",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error", "critical"],
        help="default info",
    )
    parser.add_argument(
        "--access-log", action=argparse.BooleanOptionalAction, default=None,
        help="log every request (default off; /metrics counts requests)",
    )  # fmt: skip
    return parser


def warn_unknown_environment() -> None:
    """Warn about ``DURATION_SERVE_*`` variables nothing reads (a typo would otherwise go
    unnoticed), and about the earlier names (``DURATION_MODEL_PATH``, ...)."""
    fields = {name.upper() for name in Settings.model_fields}
    for name in sorted(os.environ):
        if name.startswith(ENV_PREFIX):
            if name.removeprefix(ENV_PREFIX) not in fields:
                logger.warning("%s is not a setting of duration-serve and is ignored", name)
        elif name.startswith("DURATION_") and name.removeprefix("DURATION_") in fields:
            logger.warning(
                "%s is ignored: duration-serve reads %s%s now",
                name,
                ENV_PREFIX,
                name.removeprefix("DURATION_"),
            )


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging set-up, extended to this package and the core library.

    uvicorn applies it in every worker process too, so all log lines share one format.
    """
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    for name in ("duration_service", "duration_core"):
        config["loggers"][name] = {
            "handlers": ["default"],
            "level": level.upper(),
            "propagate": False,
        }
    return config


def prepare_multiprocess_metrics(settings: Settings) -> None:
    """Give several workers one metrics folder, emptied at start.

    prometheus-client's multiprocess mode keeps each worker's values in files under
    ``PROMETHEUS_MULTIPROC_DIR``; files left by an earlier run would be added to this run's
    counts (and show its model as still served), so they are removed first. Without a folder
    from the environment, one per port is used under the system's temporary folder, so
    restarts reuse it instead of piling up new ones.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder and settings.workers == 1:
        return
    if not folder:
        folder = str(Path(tempfile.gettempdir()) / f"duration-metrics-{settings.port}")
        # prometheus-client reads this variable only from the environment, when it is
        # imported: the one variable set here, for the worker processes to inherit.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    Path(folder).mkdir(parents=True, exist_ok=True)
    for stale in Path(folder).glob("*.db"):
        stale.unlink(missing_ok=True)


def serve(settings: Settings) -> None:
    """Run the service with uvicorn until it is stopped.

    The settings reach every worker process as an argument: the app factory below is
    pickled into each worker uvicorn spawns, so nothing is passed through the environment.
    This is ``uvicorn.run`` without its check that an app with workers be an import string.
    """
    config = uvicorn.Config(
        functools.partial(create_app, settings),
        factory=True,
        log_config=log_config(settings.log_level),
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=settings.access_log,
    )
    server = uvicorn.Server(config)
    try:
        if config.workers > 1:
            supervisor: dict[str, Any] = {"sockets": [config.bind_socket()]}
            if "target" in inspect.signature(Multiprocess.__init__).parameters:
                supervisor["target"] = server.run  # uvicorn before 0.5x: the workers' entry
            Multiprocess(config, **supervisor).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    if config.workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``duration-serve``; returns the exit code (2 for bad options)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {
        "model_path": args.model,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "max_batch_size": args.max_batch_size,
        "model_sha256": args.model_sha256,
        "log_level": args.log_level,
        "access_log": args.access_log,
    }
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        parser.error(problems)
    logging.config.dictConfig(log_config(settings.log_level))
    prepare_multiprocess_metrics(settings)
    warn_unknown_environment()
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
