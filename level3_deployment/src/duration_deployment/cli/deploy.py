"""``duration-deploy``: one verb per call of the router's control API.

Each verb is a function of the parsed arguments and a :class:`~duration_deployment.client.
RouterClient` returning the router's answer (``VERBS``); :func:`main` prints it as text, or as
JSON with ``--json``. Exit codes: 0 done, 1 the router refused (or could not be reached), 2 bad
usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from duration_deployment.cli.db import add_db_parser, run_db, show_db
from duration_deployment.cli.pipeline import train_and_deploy
from duration_deployment.cli.render import print_history, print_report, print_table
from duration_deployment.client import CallError, RouterClient
from duration_deployment.log_migrations import SchemaError
from duration_deployment.prediction_log import database_error
from duration_deployment.replay import ReplayError, feedback_month, replay_month

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
  duration-deploy db current --database sqlite:///prediction_log.db
"""


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
        "--part",
        type=_part,
        metavar="K/N",
        help="only the K-th of N consecutive parts of the rides (a month sent piece by piece)",
    )
    replay.add_argument(
        "--batch", type=_positive_int, help="rides per request (default rate/10, at least 1)"
    )
    replay.add_argument(
        "--no-feedback", action="store_true", help="do not post the actual durations"
    )
    replay.add_argument(
        "--feedback-lag",
        type=_non_negative_int,
        metavar="N",
        help="post each ride's actual duration once N more rides were sent (as in production); "
        "default: all of them after the last ride",
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
    add_db_parser(verbs)
    return parser


def _part(text: str) -> tuple[int, int]:
    """``K/N`` with 1 <= K <= N."""
    k, slash, n = text.partition("/")
    if not (slash and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N with 1 <= K <= N (e.g. 3/12)")
    return int(k), int(n)


def _non_negative_int(text: str) -> int:
    """A whole number of at least 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


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


# -- the verbs: each returns the router's answer ----------------------------------------------

Verb = Callable[[argparse.Namespace, RouterClient], Any]


def _deploy(args: argparse.Namespace, client: RouterClient) -> Any:
    body: dict[str, Any] = {
        "model_uri": args.model_uri,
        "variant": args.variant,
        "shadow": args.shadow,
    }
    if args.weight is not None:
        body["weight"] = args.weight
    return client.call("POST", "/deployments", json=body)


def _weight(args: argparse.Namespace, client: RouterClient) -> Any:
    return client.call("PATCH", f"/deployments/{args.variant}", json={"weight": args.weight})


def _remove(args: argparse.Namespace, client: RouterClient) -> Any:
    return client.call("DELETE", f"/deployments/{args.variant}")


def _promote(args: argparse.Namespace, client: RouterClient) -> Any:
    return client.call("POST", "/promote", json={"variant": args.variant})


def _rollback(args: argparse.Namespace, client: RouterClient) -> Any:
    return client.call("POST", "/rollback")


def _status(args: argparse.Namespace, client: RouterClient) -> Any:
    return client.call("GET", "/deployments", params={"history": args.history})


def _report(args: argparse.Namespace, client: RouterClient) -> Any:
    result = {
        "ab": client.call("GET", "/ab/report", params={"challenger": args.challenger}),
        "monitoring": client.call("GET", "/monitoring/report"),
    }
    if args.html:
        folder: Path = args.html
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ab-report.html").write_text(
            client.call("GET", "/ab/report.html", params={"challenger": args.challenger}),
            encoding="utf-8",
        )
        (folder / "monitoring-report.html").write_text(
            client.call("GET", "/monitoring/report.html"), encoding="utf-8"
        )
    return result


def _replay(args: argparse.Namespace, client: RouterClient) -> Any:
    return replay_month(
        client,
        args.month,
        rate=args.rate,
        limit=args.limit,
        batch=args.batch,
        feedback=not args.no_feedback,
        feedback_lag=args.feedback_lag,
        part=args.part,
    )


def _feedback(args: argparse.Namespace, client: RouterClient) -> Any:
    return feedback_month(client, args.month, limit=args.limit)


VERBS: dict[str, Verb] = {
    "deploy": _deploy,
    "weight": _weight,
    "remove": _remove,
    "promote": _promote,
    "rollback": _rollback,
    "status": _status,
    "report": _report,
    "replay": _replay,
    "feedback": _feedback,
    "pipeline": train_and_deploy,
}
#: Verbs that change the table: their answer is a control result (event and table).
CHANGES = ("deploy", "weight", "remove", "promote", "rollback")


def show(args: argparse.Namespace, result: Any) -> None:
    """Print a verb's answer as a workshop reads it (``--json``: as the router sent it)."""
    verb = args.verb
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    elif verb in CHANGES:
        print(f"{result['event']['action']}: {result['event']['detail']}")
        print_table(result)
    elif verb == "status":
        print_table(result)
        print(f"history (last {args.history}):")
        print_history(result["history"])
    elif verb == "report":
        print_report(result)
        if args.html:
            print(f"HTML: {args.html / 'ab-report.html'}, {args.html / 'monitoring-report.html'}")
    elif verb == "pipeline":
        print(
            f"trained and registered v{result['registered_version']} ({result['best_model']}); "
            f"deployed as challenger"
        )
        print_table(result["deployment"])
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``duration-deploy``; 0 on success, 1 when the router refuses, 2 for bad usage."""
    parser = build_deploy_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    if args.verb == "db":  # the database itself, not the router
        try:
            db_result = run_db(args)
        except (SchemaError, FileNotFoundError) as exc:  # their messages name the database
            print(f"duration-deploy db {args.action}: {exc}", file=sys.stderr)
            return 1
        except SQLAlchemyError as exc:
            reason = database_error(exc)
            print(f"duration-deploy db {args.action}: {args.database}: {reason}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(db_result, indent=2))
        else:
            show_db(db_result)
        return 0
    token = os.environ.get("DURATION_ROUTER_TOKEN")
    with RouterClient(args.url, token, timeout=args.timeout) as client:
        try:
            result = VERBS[args.verb](args, client)
        except (CallError, ReplayError) as exc:
            print(f"duration-deploy {args.verb}: {exc}", file=sys.stderr)
            return 1
    show(args, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
