"""``duration-router`` (the A/B router) and ``duration-deploy`` (its control API, one verb each)."""

from __future__ import annotations

import argparse
import copy
import getpass
import json
import logging
import logging.config
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import uvicorn.config
from pydantic import ValidationError

from duration_deployment.config import RouterSettings

logger = logging.getLogger("duration_deployment.cli")

ROUTER_EPILOG = """environment (an option given on the command line wins):
  DURATION_ROUTER_TOKEN          the control token (required, at least 16 characters)
  --tracking-uri                 DURATION_ROUTER_TRACKING_URI, else MLFLOW_TRACKING_URI,
                                 else sqlite:///mlflow.db (level 2's embedded store)
  --prediction-log               DURATION_ROUTER_PREDICTION_LOG_URL (sqlite:///prediction_log.db)
  --host, --port                 DURATION_ROUTER_HOST, DURATION_ROUTER_PORT (127.0.0.1:8100)
  --log-level                    DURATION_ROUTER_LOG_LEVEL
  every other setting            DURATION_ROUTER_<NAME>: see duration_deployment.config
At start-up the router deploys the registry's champion (and challenger) aliases.

example:
  duration-pipeline run --train green:2021-01 --val green:2021-02
  export DURATION_ROUTER_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe())')
  duration-router --port 8100
"""

DEPLOY_EPILOG = """environment:
  DURATION_ROUTER_URL     the router (default http://127.0.0.1:8100)
  DURATION_ROUTER_TOKEN   the control token

examples:
  duration-deploy deploy models:/nyc-taxi-duration@challenger --weight 0.1
  duration-deploy status
  duration-deploy replay --month green:2021-03 --rate 200 --limit 4000
  duration-deploy report
  duration-deploy promote
  duration-deploy rollback
  duration-deploy pipeline --train green:2021-01 --val green:2021-02 --weight 0.1
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


def router_main(argv: Sequence[str] | None = None) -> int:
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
    from duration_deployment.main import create_app

    # One process: the routing table lives in its memory (scale out with one router per
    # replica reading the same registry; see the README).
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=log_config(settings.log_level),
        log_level=settings.log_level,
        access_log=settings.access_log,
    )
    return 0


# -- duration-deploy --------------------------------------------------------------------------


class CallError(Exception):
    """The router refused a call or could not be reached."""


def build_deploy_parser() -> argparse.ArgumentParser:
    """The command line of ``duration-deploy``."""
    parser = argparse.ArgumentParser(
        prog="duration-deploy",
        description="Deploy registered model versions behind duration-router, and steer them.",
        epilog=DEPLOY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("DURATION_ROUTER_URL", "http://127.0.0.1:8100"),
        help="the router (default $DURATION_ROUTER_URL or http://127.0.0.1:8100)",
    )
    parser.add_argument("--json", action="store_true", help="print the router's JSON answer")
    parser.add_argument(
        "--timeout", type=_positive_float, default=120.0, help="seconds per call (default 120)"
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    deploy = verbs.add_parser("deploy", help="deploy a registered model version (the one call)")
    deploy.add_argument(
        "model_uri", help="models:/NAME@ALIAS, models:/NAME/VERSION or a version number"
    )
    deploy.add_argument("--variant", default="challenger", help="variant name (default challenger)")
    group = deploy.add_mutually_exclusive_group()
    group.add_argument(
        "--weight",
        type=_share,
        help="share of traffic, 0-1 or a percentage such as 10%% (default 0.1)",
    )
    group.add_argument(
        "--shadow", action="store_true", help="a copy of the traffic, never answered"
    )

    weight = verbs.add_parser("weight", help="change a variant's share of traffic")
    weight.add_argument("variant")
    weight.add_argument("weight", type=_share, help="0-1 or a percentage such as 50%%")

    remove = verbs.add_parser("remove", help="take a variant out of the table")
    remove.add_argument("variant")

    promote = verbs.add_parser("promote", help="the challenger becomes champion (moves the alias)")
    promote.add_argument("--variant", default="challenger")

    verbs.add_parser("rollback", help="restore the table (and aliases) before the last change")
    status = verbs.add_parser("status", help="the table, the aliases and the recent history")
    status.add_argument(
        "--history", type=int, default=10, help="history entries shown (default 10)"
    )

    report = verbs.add_parser("report", help="the A/B report (and the drift report)")
    report.add_argument("--challenger", default="challenger")
    report.add_argument(
        "--html",
        type=Path,
        metavar="FOLDER",
        help="also save ab-report.html and monitoring-report.html here",
    )

    replay = verbs.add_parser(
        "replay",
        help="send a real TLC month's rides through the router, then their actual durations",
    )
    replay.add_argument(
        "--month", required=True, help="a month (green:2021-03) or a TLC parquet file"
    )
    replay.add_argument(
        "--rate", type=_positive_float, default=200.0, help="rides per second (default 200)"
    )
    replay.add_argument(
        "--limit",
        type=_positive_int,
        help="send a random sample of N rides (seed 0), in pickup order",
    )
    replay.add_argument(
        "--batch", type=_positive_int, help="rides per request (default rate/10, at least 1)"
    )
    replay.add_argument(
        "--no-feedback", action="store_true", help="do not post the actual durations"
    )

    fb = verbs.add_parser(
        "feedback", help="attach a TLC month's actual durations to logged predictions"
    )
    fb.add_argument("--month", required=True, help="the month replayed (green:2021-03) or its file")
    fb.add_argument("--limit", type=_positive_int, help="the same sample as replay --limit N")

    pipeline = verbs.add_parser(
        "pipeline",
        help="train with the level-2 pipeline, then deploy the new version as challenger",
    )
    pipeline.add_argument("--train", action="append", required=True, metavar="SOURCE")
    pipeline.add_argument("--val", required=True, metavar="SOURCE")
    pipeline.add_argument(
        "--weight", type=_share, default=None, help="challenger share (default 0.1)"
    )
    pipeline.add_argument(
        "--tracking-uri", help="the router's MLflow URI (default as duration-pipeline)"
    )
    pipeline.add_argument("--candidates", help="comma-separated models (default all)")
    return parser


def _positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    """A finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive, finite number")
    return value


def _share(text: str) -> float:
    """``0.1`` or ``10%`` -> 0.1."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share (0.1 or 10%)") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share of traffic in (0, 1]")
    return value


def actor() -> str:
    """Who is calling, for the history: ``$GITHUB_ACTOR (GitHub Actions)`` or ``user@host``."""
    if os.environ.get("GITHUB_ACTOR"):
        run = os.environ.get("GITHUB_RUN_ID", "?")
        return f"{os.environ['GITHUB_ACTOR']} (GitHub Actions run {run})"
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:100]


class RouterClient:
    """A thin httpx client of the router's API.

    Raises:
        CallError: From every call, on a refusal (with the router's ``detail``) or when the
            router cannot be reached.
    """

    def __init__(self, url: str, token: str | None, *, timeout: float = 120.0) -> None:
        headers = {"X-Actor": actor()}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; the JSON answer (or text for HTML)."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CallError(f"cannot reach the router at {self.url}: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text[:300]
            if response.status_code in (401, 403):
                detail += " (duration-deploy sends $DURATION_ROUTER_TOKEN: export it in this shell)"
            raise CallError(f"{method} {path}: HTTP {response.status_code}: {detail}")
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()


def print_table(state: dict[str, Any], out: Any = sys.stdout) -> None:
    """The routing table as aligned text (a workshop reads this)."""
    table = state.get("table", state)
    print(f"routing table, revision {table.get('revision')}:", file=out)
    for v in table.get("variants", []):
        share = "shadow" if v["shadow"] else f"{v['weight'] * 100:5.1f}%"
        print(
            f"  {v['variant']:<12} v{v['model_version']:<4} {share:>7}  {v.get('model', '?'):<7} "
            f"run {str(v.get('run_id'))[:8]}  sha256 {v['sha256'][:12]}",
            file=out,
        )
    if not table.get("variants"):
        print("  (nothing deployed)", file=out)
    aliases = state.get("aliases")
    if aliases is not None:
        print(
            "  MLflow aliases: "
            + (", ".join(f"{a}=v{n}" for a, n in sorted(aliases.items())) or "none"),
            file=out,
        )


def print_history(events: list[dict[str, Any]], out: Any = sys.stdout) -> None:
    """History entries, oldest first."""
    for e in events:
        print(
            f"  {e['at_iso']}  rev {e['revision']:<3} {e['action']:<18} "
            f"by {e['actor']}: {e['detail']}",
            file=out,
        )


def deploy_main(argv: Sequence[str] | None = None) -> int:
    """Run ``duration-deploy``; 0 on success, 1 when the router refuses, 2 for bad usage."""
    from duration_deployment.replay import ReplayError

    parser = build_deploy_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    token = os.environ.get("DURATION_ROUTER_TOKEN")
    client = RouterClient(args.url, token, timeout=args.timeout)
    try:
        return _run_verb(args, client)
    except (CallError, ReplayError) as exc:
        print(f"duration-deploy {args.verb}: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()


def _run_verb(args: argparse.Namespace, client: RouterClient) -> int:
    from duration_deployment.replay import feedback_month, replay_month

    verb = args.verb
    result: Any
    if verb == "deploy":
        body: dict[str, Any] = {
            "model_uri": args.model_uri,
            "variant": args.variant,
            "shadow": args.shadow,
        }
        if args.weight is not None:
            body["weight"] = args.weight
        result = client.call("POST", "/deployments", json=body)
    elif verb == "weight":
        result = client.call("PATCH", f"/deployments/{args.variant}", json={"weight": args.weight})
    elif verb == "remove":
        result = client.call("DELETE", f"/deployments/{args.variant}")
    elif verb == "promote":
        result = client.call("POST", "/promote", json={"variant": args.variant})
    elif verb == "rollback":
        result = client.call("POST", "/rollback")
    elif verb == "status":
        result = client.call("GET", "/deployments", params={"history": args.history})
        if not args.json:
            print_table(result)
            print(f"history (last {args.history}):")
            print_history(result["history"])
            return 0
    elif verb == "report":
        result = {
            "ab": client.call("GET", "/ab/report", params={"challenger": args.challenger}),
            "monitoring": client.call("GET", "/monitoring/report"),
        }
        if args.html:
            args.html.mkdir(parents=True, exist_ok=True)
            (args.html / "ab-report.html").write_text(
                client.call("GET", "/ab/report.html", params={"challenger": args.challenger}),
                encoding="utf-8",
            )
            (args.html / "monitoring-report.html").write_text(
                client.call("GET", "/monitoring/report.html"), encoding="utf-8"
            )
        if not args.json:
            print_report(result)
            if args.html:
                print(
                    f"HTML: {args.html / 'ab-report.html'}, {args.html / 'monitoring-report.html'}"
                )
            return 0
    elif verb == "replay":
        result = replay_month(
            client,
            args.month,
            rate=args.rate,
            limit=args.limit,
            batch=args.batch,
            feedback=not args.no_feedback,
        )
    elif verb == "feedback":
        result = feedback_month(client, args.month, limit=args.limit)
    elif verb == "pipeline":
        result = _pipeline(args, client)
    else:  # pragma: no cover - argparse refuses unknown verbs
        raise AssertionError(verb)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    elif verb in ("deploy", "weight", "remove", "promote", "rollback"):
        print(f"{result['event']['action']}: {result['event']['detail']}")
        print_table(result)
    elif verb == "pipeline":
        print(
            f"trained and registered v{result['registered_version']} ({result['best_model']}); "
            f"deployed as challenger"
        )
        print_table(result["deployment"])
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def print_report(result: dict[str, Any]) -> None:
    """The A/B verdict and the drift figures, in a few lines."""
    ab = result["ab"]
    print("A/B report:")
    for v in ab.get("variants", []):
        rmse = "n/a" if v.get("rmse") is None else f"{v['rmse']:.3f}"
        print(
            f"  {v['variant']:<12} v{v['model_version']:<4} predictions {v['predictions']:>7,}  "
            f"labelled {v['labelled']:>7,}  RMSE {rmse:>7}  error rate {v['error_rate']:.2%}"
        )
    comparison = ab.get("comparison")
    if comparison:
        print(f"  verdict: {comparison['verdict']} - {comparison['reason']}")
    for note in ab.get("notes", []):
        print(f"  note: {note}")
    print("drift (PSI against the training profile):")
    for v in result["monitoring"].get("variants", []):
        features = v.get("features") or {}
        figures = ", ".join(f"{name} {values['psi']:.3f}" for name, values in features.items())
        unseen = v.get("unseen_pair_share")
        unseen_text = "" if unseen is None else f", unseen PU_DO pairs {unseen:.1%}"
        figures = f": {figures}{unseen_text}" if figures else ""
        print(f"  {v['variant']:<12} v{v['model_version']:<4} {v['status']}{figures}")


def _pipeline(args: argparse.Namespace, client: RouterClient) -> dict[str, Any]:
    """Train (level 2) with offline promotion off when the router already has a champion,
    then deploy the new version as challenger."""
    from duration_training import PipelineConfig, run_pipeline
    from duration_training.tracking import absolute_sqlite

    state = client.call("GET", "/deployments", params={"history": 0})
    # Train into the router's registry: a version registered anywhere else would not be the
    # one the router deploys under the same number.
    registry = state["registry"]
    if args.tracking_uri and absolute_sqlite(args.tracking_uri) != registry:
        raise CallError(
            f"--tracking-uri {args.tracking_uri} is not the router's registry {registry}: "
            "leave it out to train into the router's registry"
        )
    if registry.startswith("sqlite:///") and not Path(registry.removeprefix("sqlite:///")).exists():
        raise CallError(f"the router's registry {registry} is not reachable from here")
    serving = any(v["variant"] == "champion" for v in state["table"]["variants"])
    overrides: dict[str, Any] = {"offline_promotion": not serving}
    if args.candidates:
        overrides["candidates"] = tuple(c.strip() for c in args.candidates.split(",") if c.strip())
    config = PipelineConfig(**overrides)
    started = time.perf_counter()
    result = run_pipeline(args.train, args.val, config=config, tracking_uri=registry)
    summary = result.summary()
    if not serving and "champion" in result.aliases_moved:
        deployment = client.call(
            "POST", "/deployments", json={"model_uri": result.version, "variant": "champion"}
        )
    else:
        body = {"model_uri": result.version, "variant": "challenger"}
        if args.weight is not None:
            body["weight"] = args.weight
        deployment = client.call("POST", "/deployments", json=body)
    summary["deployment"] = deployment
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


if __name__ == "__main__":
    sys.exit(deploy_main())
