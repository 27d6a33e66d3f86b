"""``duration-operate``: the closed loop against a running ``duration-router``.

    duration-operate run        monitor every interval_seconds (the Prefect flows), until stopped
    duration-operate once       one monitor pass, then exit
    duration-operate status     what the loop is doing (champion, rollout stage, frozen, limits)
    duration-operate freeze     no retrain, no stage change until unfreeze (a note in the history)
    duration-operate unfreeze
    duration-operate approve V  let the final promotion of version V go ahead (require_approval)
    duration-operate timeline --out FILE.html
    duration-operate policy [--check FILE]   print the default policy, or validate a file

The router is ``--router-url`` or ``$DURATION_ROUTER_URL`` and its token
``$DURATION_ROUTER_TOKEN`` (as for ``duration-deploy``); the registry is the router's unless
``--tracking-uri`` says otherwise. Exit codes: 0 done, 1 a refusal or an outage (one line on
stderr naming it), 2 bad usage, 130/143 on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from duration_operations import ledger as kinds
from duration_operations.metrics import OperationsMetrics
from duration_operations.operations import Operations
from duration_operations.passes import NoChampionError
from duration_operations.policy import PolicyError, default_policy_text, load_policy
from duration_operations.registry_records import RegistryRecordError, RegistryUnavailableError
from duration_operations.router_gateway import (
    RouterGateway,
    RouterRefusedError,
    RouterUnavailableError,
)

logger = logging.getLogger("duration_operations")
FAILURES = (
    PolicyError,
    RouterUnavailableError,
    RouterRefusedError,
    NoChampionError,
    RegistryUnavailableError,
    RegistryRecordError,
)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number, 1 or more")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65_535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="duration-operate", description="Level 4: the closed loop of retraining and rollout."
    )
    parser.add_argument(
        "--router-url", default=os.environ.get("DURATION_ROUTER_URL", "http://127.0.0.1:8100")
    )
    parser.add_argument("--policy", type=Path, help="policy TOML (default: the bundled one)")
    parser.add_argument(
        "--tracking-uri", help="MLflow tracking/registry URI (default: the router's)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("operations"), help="where retraining data is written"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="monitor every interval, until stopped")
    run.add_argument("--metrics-port", type=_port, help="serve Prometheus metrics on this port")
    run.add_argument(
        "--interval", type=_positive, help="seconds between passes (default: the policy's)"
    )
    run.add_argument("--max-passes", type=_count, help="stop after this many passes (1 or more)")
    run.add_argument("--no-prefect", action="store_true", help="run the steps without Prefect")
    once = sub.add_parser("once", help="one monitor pass")
    once.add_argument("--no-prefect", action="store_true", help="run the steps without Prefect")
    sub.add_parser("status", help="what the loop is doing")
    freeze = sub.add_parser("freeze", help="stop retrains and stage changes")
    freeze.add_argument("--reason", default="frozen by hand", help="written into the history")
    sub.add_parser("unfreeze", help="let the loop act again")
    approve = sub.add_parser("approve", help="allow the final promotion of a version")
    approve.add_argument("version", help="the model version (digits)")
    timeline = sub.add_parser("timeline", help="the HTML timeline of the loop")
    timeline.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    policy = sub.add_parser(
        "policy", help="print the default policy, or check a file (--check FILE or --policy FILE)"
    )
    policy.add_argument("--check", type=Path, help="validate this policy file")
    for command in sub.choices.values():  # --json after the verb too (status --json)
        command.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    return parser


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text, flush=True)


def _operations(args: argparse.Namespace, metrics: OperationsMetrics | None = None) -> Operations:
    policy = load_policy(args.policy)
    gateway = RouterGateway(args.router_url, os.environ.get("DURATION_ROUTER_TOKEN"))
    return Operations(
        gateway, policy, tracking_uri=args.tracking_uri, workdir=args.workdir, metrics=metrics
    )


def _one_pass(ops: Operations, use_prefect: bool) -> dict[str, Any]:
    if not use_prefect:
        return ops.run_pass().to_dict()
    from prefect.settings import temporary_settings  # Prefect loads only when used

    from duration_operations.flows import build_flows

    if "PREFECT_LOGGING_LEVEL" not in os.environ:
        # Prefect logs every task run, and a failed one with its traceback; the loop prints
        # one line per pass (and per failure) itself, and Prefect's API keeps the details.
        for name, level in (("prefect", logging.WARNING), ("prefect.flow_runs", logging.CRITICAL),
                            ("prefect.task_runs", logging.CRITICAL)):  # fmt: skip
            logging.getLogger(name).setLevel(level)
    # Defaults only (PREFECT_* variables still win): the embedded API has no network to send
    # telemetry to, and its first start (the database's migrations) took over Prefect's 20 s
    # on a busy 2-core machine.
    defaults = {"server.analytics_enabled": False, "server.ephemeral.startup_timeout_seconds": 180}
    with temporary_settings(set_defaults=defaults):
        return dict(build_flows(ops).monitor())


#: Seconds a pass in progress may take to finish after SIGTERM/Ctrl-C before the process exits
#: (the loop resumes from the router's table and history, so a pass cut short is safe).
STOP_GRACE_SECONDS = 10.0


def _run(args: argparse.Namespace) -> int:
    metrics = OperationsMetrics()
    ops = _operations(args, metrics)
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(args.metrics_port, addr="127.0.0.1", registry=metrics.registry)
        except OSError as exc:
            raise SystemExit(
                f"duration-operate: cannot serve metrics on port {args.metrics_port}: {exc}"
            ) from None
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    interval = args.interval or ops.policy.interval_seconds

    crashed: list[BaseException] = []
    failed: list[BaseException] = []  # the passes that failed since the last good one

    def passes() -> None:
        try:
            run_passes()
        except BaseException as exc:  # reported by the main thread, exit 1
            crashed.append(exc)
            stop.set()

    def run_passes() -> None:
        done = 0
        while not stop.is_set():
            try:
                result = _one_pass(ops, not args.no_prefect)
                _print(args, result, _summary(result))
            except FAILURES as exc:
                metrics.passes.labels(outcome="error").inc()
                if _refused_token(exc):
                    raise  # configuration: no later pass would do better (main: one line, 1)
                print(f"duration-operate: pass failed: {exc}", file=sys.stderr, flush=True)
                failed.append(exc)
            else:
                failed.clear()
            done += 1
            if args.max_passes is not None and done >= args.max_passes:
                return
            stop.wait(interval)

    # The passes run in a thread of their own, so the signals stay with this (main) thread:
    # Prefect installs its SIGTERM bridge only in the main thread, and a stop must not depend
    # on where in a flow the signal lands.
    worker = threading.Thread(target=passes, name="duration-operate-passes", daemon=True)
    worker.start()
    while worker.is_alive() and not stop.is_set():
        worker.join(0.2)
    if stop.is_set():
        worker.join(STOP_GRACE_SECONDS)
    ops.gateway.close()
    if crashed:
        raise crashed[0]
    if received:
        return 130 if received[0] == signal.SIGINT else 143
    return 1 if failed else 0  # --max-passes: the last pass failed


def _refused_token(exc: BaseException) -> bool:
    """A 401/403 from the router: the token is missing or wrong, and stays so."""
    return isinstance(exc, RouterRefusedError) and any(
        f"HTTP {code}" in str(exc) for code in (401, 403)
    )


def _summary(result: dict[str, Any]) -> str:
    fired = [t["trigger"] for t in result["triggers"] if t["fired"]]
    line = f"champion v{result['champion']}: fired {', '.join(fired) or 'none'}"
    if result.get("retrain"):
        line += f"; retrain {result['retrain']['outcome']}: {result['retrain']['reason']}"
    elif result.get("retrain_skipped") and fired:
        line += f"; no retrain ({result['retrain_skipped']})"
    if result.get("rollout"):
        r = result["rollout"]
        line += f"; rollout v{r['version']} {r['action']}: {r['reason']}"
    return line


def _main(args: argparse.Namespace) -> int:
    if args.command == "policy":
        args.check = args.check or args.policy
        if args.check is None:
            print(default_policy_text(), end="")
        else:
            policy = load_policy(args.check)
            _print(args, policy.model_dump(), f"{args.check}: a valid policy")
        return 0
    if args.command == "run":
        return _run(args)
    ops = _operations(args)
    try:
        if args.command == "once":
            result = _one_pass(ops, not args.no_prefect)
            _print(args, result, _summary(result))
        elif args.command in ("status", "timeline"):
            from duration_operations.status import status

            # the timeline draws up to 10,000 passes (the router's largest page)
            snap = ops.snapshot(monitor_notes=10_000 if args.command == "timeline" else 0)
            data = status(ops, snap)
            if args.command == "status":
                _print(args, data, _status_text(data))
            else:
                from duration_operations.timeline import render_timeline

                thresholds = dict(ops.policy.triggers.drift.psi)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(render_timeline(snap.ledger, data, thresholds), "utf-8")
                _print(args, {"out": str(args.out)}, f"timeline written to {args.out}")
        elif args.command == "freeze":
            ops.gateway.note(kinds.FREEZE, args.reason, {})
            _print(args, {"frozen": True}, "frozen: no retrain and no stage change until unfreeze")
        elif args.command == "unfreeze":
            ops.gateway.note(kinds.UNFREEZE, "unfrozen", {})
            _print(args, {"frozen": False}, "unfrozen")
        elif args.command == "approve":
            if not args.version.isdigit():
                raise PolicyError(f"approve: version must be digits, not {args.version!r}")
            ops.gateway.note(
                kinds.APPROVAL,
                f"promotion of v{args.version} approved",
                {},
                model_version=args.version,
            )
            _print(args, {"approved": args.version}, f"v{args.version}'s promotion approved")
    finally:
        ops.gateway.close()
    return 0


def _status_text(data: dict[str, Any]) -> str:
    lines = [
        f"router {data['router']} (registry {data['registry']})",
        f"champion {'v' + data['champion'] if data['champion'] else 'none deployed'}; "
        f"{data['rollout_text']}",
        f"frozen: {data['frozen'] or 'no'}",
        f"retrains in 24 h: {data['retrains_24h']}; "
        f"cool-down left: {data['cooldown_minutes_left']} min",
        f"last pass: {data['last_pass'] or 'none yet'}",
    ]
    lines += [f"decision: {d['summary']}" for d in data["decisions"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _main(args)
    except FAILURES as exc:
        print(f"duration-operate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
