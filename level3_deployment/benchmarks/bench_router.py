"""Benchmark: the router's own cost, against the level-1 service serving the same model.

In a temporary folder it trains one model with the level-2 pipeline (``duration-pipeline run``,
linear only, green 2021-01/02, embedded ``sqlite:///mlflow.db``), exports the champion as a core
artifact, and starts four servers on free ports of 127.0.0.1:

1. ``duration-serve --model champion.zip``: level 1, the model served directly;
2. ``duration-router`` with one variant: the same registered version as ``champion``;
3. a second ``duration-router`` where ``POST /deployments`` put that version again as
   ``challenger`` at weight 0.5: two variants at 50/50, the same model on both sides, so only
   the routing differs;
4. the router of 2. with its prediction log's crash journal off
   (``DURATION_ROUTER_LOG_JOURNAL_DIR=``): the log as it was before the journal, so that the
   journal's cost is measured in the same run (target: at most 10% of throughput).

Each router keeps its default prediction log, a SQLite file in WAL mode in its own folder, and
(but the fourth) its journal there.
Every server is warmed up, then driven in turn with wrk from a separate process, the load of
level 1's ``bench_service.py``: 32 connections, 15 s by default, ``POST /predict`` with a real
ride (the first 1,000 of green 2021-02, in turn) and a ``ride_id`` that changes with every
request (a counter in the wrk script), so the sticky split really splits. ``--rounds 3`` repeats
the four runs, interleaved, and reports medians: on a busy machine one round is noise.

It prints throughput and p50/p99 latency for each, the latency a router adds at p99 and the
share of direct throughput it keeps, against the targets (at most 2 ms added at p99, at least
80% of direct throughput), then checks the prediction logs: after the routers stop (they flush
on shutdown), the rows of each run must equal the predictions the router answered; wrk counts
the same minus the requests still in flight when it stopped.

Needs ``wrk`` (Debian/Ubuntu: ``apt-get install wrk``); ``tox -e bench-router`` installs the rest.
``--profile router.svg`` also samples the 50/50 router with py-spy during its last run (this
slows it down a little: use it to see where the time goes, not for the figures).

Usage: ``python level3_deployment/benchmarks/bench_router.py [--duration 15] [--connections 32]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from duration_core import read_trips

BIN = Path(sys.executable).parent
MODEL_NAME = "nyc-taxi-duration"
TRAIN, VAL = "green:2021-01", "green:2021-02"
#: Targets: the router adds at most this much latency at p99, and keeps at least this share of
#: the direct service's throughput.
MAX_ADDED_P99_MS = 2.0
MIN_THROUGHPUT_SHARE = 0.80
#: The write-ahead journal may cost at most 10% of throughput (the production-log issue).
MIN_JOURNAL_SHARE = 0.90

#: wrk script: POST one ride per request, taken in turn from WRK_RIDES (one JSON object per
#: line), with a ride_id "<WRK_PREFIX>-<thread>-<counter>" that is new for every request; print
#: the figures as one JSON line at the end (as level 1's wrk_report.lua does).
WRK_LUA = r"""
local prefix = os.getenv("WRK_PREFIX") or "bench"
local rides = {}
for line in io.lines(os.getenv("WRK_RIDES")) do
  if #line > 2 then rides[#rides + 1] = line:sub(1, -2) end  -- without the closing brace
end
local counter = 0
local threads = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

request = function()
  counter = counter + 1
  local body = rides[(counter - 1) % #rides + 1] ..
    string.format(', "ride_id": "%s-%d-%d"}', prefix, tid or 0, counter)
  return wrk.format(nil, nil, nil, body)
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Extra router settings from ``--router-env NAME=VALUE`` (e.g. the prediction log's).
ROUTER_ENV: dict[str, str] = {}


def child_env(**extra: str) -> dict[str, str]:
    """The environment of the processes started here: this one's, without any tracking server
    or router settings of the caller (everything runs on the temporary folder), plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DURATION_ROUTER_", "MLFLOW_TRACKING_")) and k != "DURATION_MODEL_PATH"
    }
    env.update(extra)
    return env


def run(command: list[str], folder: Path, log: Path) -> None:
    """Run a console command in ``folder``; exit with its log when it fails."""
    with log.open("w") as out:
        done = subprocess.run(
            command, cwd=folder, stdout=out, stderr=subprocess.STDOUT, env=child_env(), check=False
        )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:2])} failed ({done.returncode}):\n{log.read_text()}")


def prepare(folder: Path) -> dict[str, Any]:
    """Train and register one linear model, export the champion, write the rides and the
    wrk script. Returns the paths and the tracking URI."""
    tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
    print(f"training {MODEL_NAME} on {TRAIN} (linear) with duration-pipeline ...", flush=True)
    run(
        [str(BIN / "duration-pipeline"), "run", "--train", TRAIN, "--val", VAL,
         "--candidates", "linear", "--tracking-uri", tracking_uri, "--quiet"],
        folder,
        folder / "pipeline.log",
    )  # fmt: skip
    artifact = folder / "champion.zip"
    run(
        [str(BIN / "duration-pipeline"), "export", "--model-uri", f"models:/{MODEL_NAME}@champion",
         "--out", str(artifact), "--tracking-uri", tracking_uri, "--quiet"],
        folder,
        folder / "export.log",
    )  # fmt: skip
    rides = folder / "rides.jsonl"
    february = read_trips(VAL).head(1000)
    rides.write_text(
        "".join(
            json.dumps(
                {
                    "PULocationID": int(r.PULocationID),
                    "DOLocationID": int(r.DOLocationID),
                    "trip_distance": float(r.trip_distance),
                }
            )
            + "\n"
            for r in february.itertuples()
        )
    )
    script = folder / "wrk_rides.lua"
    script.write_text(WRK_LUA)
    return {"tracking_uri": tracking_uri, "artifact": artifact, "rides": rides, "script": script}


def start(
    command: list[str], base: str, env: dict[str, str], folder: Path, log: Path
) -> subprocess.Popen:
    """Start a server in ``folder`` and wait (60 s at most) until its ``/ready`` answers 200."""
    process = subprocess.Popen(
        command, cwd=folder, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{Path(command[0]).name} exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop(process)
    raise SystemExit(f"{Path(command[0]).name} was not ready after 60 s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> int:
    """SIGTERM (a graceful shutdown: the router flushes its log), SIGKILL after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def wrk(
    url: str, files: dict[str, Any], prefix: str, seconds: int, connections: int
) -> dict[str, float]:
    """Drive ``url`` with wrk (one thread) and return its figures plus requests per second."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(files["script"]), url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "WRK_RIDES": str(files["rides"]), "WRK_PREFIX": prefix},
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["rps"] = figures["requests"] / figures["seconds"]
    return figures


def metric(base: str, name: str, labels: dict[str, str] | None = None) -> float:
    """Sum of the samples of ``name`` at ``base/metrics`` whose labels include ``labels``."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in (labels or {}).items()):
            total += float(match.group(2))
    return total


def answered(base: str) -> int:
    """``POST /predict`` requests the server answered with 200 so far (its own counter)."""
    labels = {"method": "POST", "route": "/predict", "status": "200"}
    return int(metric(base, "duration_http_requests_total", labels))


def settle(base: str, timeout: float = 30.0) -> None:
    """Wait until the requests still in flight when wrk stopped are answered and logged."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = answered(base)
        if now == last and metric(base, "duration_router_log_rows_pending") == 0:
            return
        last = now


@dataclass
class Server:
    """A server under test: level 1 direct, or a router with one or two variants."""

    key: str  # the ride_id prefix of its runs
    label: str
    base: str
    folder: Path
    log: Path
    process: subprocess.Popen
    router: bool
    exit_code: int | None = None


def start_direct(folder: Path, files: dict[str, Any]) -> Server:
    """Level 1's ``duration-serve`` with the exported champion."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(BIN / "duration-serve"), "--model", str(files["artifact"]),
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    log = folder / "serve.log"
    process = start(command, base, child_env(), folder, log)
    return Server("direct", "duration-serve (level 1, direct)", base, folder, log, process, False)


def start_router(
    folder: Path, files: dict[str, Any], token: str, *, challenger: bool, journal: bool = True
) -> Server:
    """``duration-router`` in its own folder (its prediction log, journal and model cache
    there) with the champion alone, or with the same version deployed again as challenger at
    50/50; ``journal=False``: the log as it was before the journal (rows in memory only until
    written)."""
    folder.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(BIN / "duration-router"), "--tracking-uri", files["tracking_uri"],
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    log = folder / "router.log"
    extra = ROUTER_ENV | ({} if journal else {"DURATION_ROUTER_LOG_JOURNAL_DIR": ""})
    process = start(command, base, child_env(DURATION_ROUTER_TOKEN=token, **extra), folder, log)
    key, label = (
        ("two", "duration-router, 2 variants 50/50")
        if challenger
        else ("one", "duration-router, 1 variant")
        if journal
        else ("nojournal", "duration-router, 1 variant, no journal")
    )
    server = Server(key, label, base, folder, log, process, True)
    headers = {"Authorization": f"Bearer {token}", "X-Actor": "bench_router.py"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as control:
            table = control.get("/deployments").raise_for_status().json()["table"]
            for variant in table["variants"]:  # a challenger alias of another version
                if variant["variant"] != "champion":
                    control.delete(f"/deployments/{variant['variant']}").raise_for_status()
            if challenger:
                version = table["variants"][0]["model_version"]
                body = {"model_uri": version, "variant": "challenger", "weight": 0.5}
                control.post("/deployments", json=body).raise_for_status()
    except httpx.HTTPError as exc:
        stop(process)
        raise SystemExit(f"setting up {label} failed: {exc}\n{last_lines(log)}") from None
    return server


def table_of(server: Server, token: str) -> dict[str, Any]:
    """The router's routing table (``GET /deployments``)."""
    headers = {"Authorization": f"Bearer {token}"}
    answer = httpx.get(f"{server.base}/deployments", headers=headers, timeout=30)
    return answer.raise_for_status().json()["table"]  # type: ignore[no-any-return]


def measure(server: Server, files: dict[str, Any], prefix: str, args: argparse.Namespace) -> dict:
    """One wrk run against ``server``, and the answers the server counted during it."""
    before = answered(server.base)
    figures = wrk(f"{server.base}/predict", files, prefix, args.duration, args.connections)
    if server.router:
        settle(server.base)
    else:
        time.sleep(0.5)
    figures["answered"] = answered(server.base) - before
    figures["prefix"] = prefix
    return figures


def profile(pid: int, out: Path, seconds: int) -> subprocess.Popen:
    """Sample process ``pid`` with py-spy for ``seconds`` into ``out`` (.svg, .json or .txt)."""
    py_spy = shutil.which("py-spy") or str(BIN / "py-spy")
    kind = {".svg": "flamegraph", ".json": "speedscope"}.get(out.suffix, "raw")
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--rate", "250", "--nonblocking", "--threads",
         "--duration", str(seconds), "--format", kind, "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def run_rounds(
    servers: list[Server], files: dict[str, Any], args: argparse.Namespace
) -> dict[str, list[dict]]:
    """Warm every server up, then ``rounds`` times: one wrk run against each server in turn
    (interleaved, so a slower moment of the machine does not land on one server only; every
    other round in reverse order, so that no server always runs first or last)."""
    for server in servers:
        wrk(f"{server.base}/predict", files, f"warm{server.key}", args.warmup, args.connections)
    runs: dict[str, list[dict]] = {s.key: [] for s in servers}
    for n in range(1, args.rounds + 1):
        for server in servers if n % 2 else servers[::-1]:
            print(f"round {n}/{args.rounds}: {server.label} ...", flush=True)
            spy = None
            if args.profile and server.key == "two" and n == args.rounds:
                spy = profile(server.process.pid, args.profile, args.duration)
            runs[server.key].append(measure(server, files, f"{server.key}{n}", args))
            if spy is not None:
                spy.wait(timeout=120)
    return runs


def log_counts(database: Path) -> dict[str, dict[str, int]]:
    """Rows of a prediction log by run (the ride_id prefix) and variant."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT substr(ride_id, 1, instr(ride_id, '-') - 1), variant, count(*) "
            "FROM predictions GROUP BY 1, 2"
        ).fetchall()
    counts: dict[str, dict[str, int]] = {}
    for prefix, variant, n in rows:
        counts.setdefault(prefix, {})[variant] = n
    return counts


def failed(figures: dict[str, Any]) -> bool:
    """Did wrk see errors (non-2xx answers or socket errors)?"""
    return bool(figures["non_2xx"] or figures["socket_errors"])


def last_lines(log: Path, lines: int = 12) -> str:
    """The end of a server's log, where the traceback of a failing request is."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def bench(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Prepare, start the four servers, measure, stop them, read the prediction logs."""
    files = prepare(folder)
    token = secrets.token_urlsafe(32)  # the routers' control token; never printed
    servers: list[Server] = []
    result: dict[str, Any] = {}
    try:
        print("starting duration-serve and two routers ...", flush=True)
        servers.append(start_direct(folder, files))
        servers.append(start_router(folder / "one", files, token, challenger=False))
        servers.append(start_router(folder / "two", files, token, challenger=True))
        servers.append(
            start_router(folder / "nojournal", files, token, challenger=False, journal=False)
        )
        table = table_of(servers[2], token)
        result["runs"] = run_rounds(servers, files, args)
        after = table_of(servers[2], token)
        result["version"] = table["variants"][0]["model_version"]
        result["model"] = table["variants"][0].get("model")
        result["table_changed"] = after["revision"] != table["revision"]
        result["table_after"] = {v["variant"]: v["weight"] for v in after["variants"]}
        for server in servers[1:]:
            result[server.key] = {
                "written_metric": int(
                    metric(server.base, "duration_router_log_rows_written_total")
                ),
                "dropped_metric": int(
                    metric(server.base, "duration_router_log_rows_dropped_total")
                ),
                "guardrail_rollbacks": int(
                    metric(server.base, "duration_router_guardrail_rollbacks_total")
                ),
            }
    finally:
        for server in servers:
            server.exit_code = stop(server.process)
    for server in servers[1:]:
        result[server.key]["exit_code"] = server.exit_code
        result[server.key]["log"] = log_counts(server.folder / "prediction_log.db")
    result["labels"] = {s.key: s.label for s in servers}
    result["server_logs"] = {
        s.label: last_lines(s.log) for s in servers if any(map(failed, result["runs"][s.key]))
    }
    return result


def verdict(ok: bool) -> str:
    """``met`` or ``MISSED``."""
    return "met" if ok else "MISSED"


def median_of(runs: list[dict], key: str) -> float:
    """The median of one figure over the rounds."""
    return statistics.median(r[key] for r in runs)


def report(args: argparse.Namespace, result: dict[str, Any]) -> bool:
    """Print the tables; True when each router's log holds exactly the predictions it answered."""
    runs, labels = result["runs"], result["labels"]
    rounds = f"median of {args.rounds} interleaved rounds" if args.rounds > 1 else "one round"
    print(
        f"\n{MODEL_NAME} v{result['version']} ({result['model']}) on every side; POST /predict, "
        f"one real ride per request, a new ride_id per request; wrk -t1, {args.connections} "
        f"connections, {args.duration} s per run ({rounds}), {args.warmup} s of warm-up each; "
        f"{os.cpu_count()} cores; the routers' prediction log: SQLite (WAL)"
    )
    print(f"{'server':<36}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}")
    for key, label in labels.items():
        f = runs[key]
        errors = sum(r["non_2xx"] + r["socket_errors"] for r in f)
        print(
            f"{label:<36}{median_of(f, 'rps'):>10,.0f}{median_of(f, 'p50_ms'):>9.2f}"
            f"{median_of(f, 'p99_ms'):>9.2f}{max(r['max_ms'] for r in f):>9.1f}{errors:>8}"
        )
    if args.rounds > 1:
        print("each round (req/s, p99 ms):")
        for key, label in labels.items():
            cells = "  ".join(f"{r['rps']:>6,.0f} {r['p99_ms']:>6.2f}" for r in runs[key])
            print(f"  {label:<34}{cells}")

    print(
        f"\nthe router's cost{'':<19}{'added p99 ms':>13}  (target <= {MAX_ADDED_P99_MS:g})"
        f"{'share of direct req/s':>24}  (target >= {MIN_THROUGHPUT_SHARE:.0%})"
    )
    direct = runs["direct"]
    for key in ("one", "two", "nojournal"):
        # Compared round by round (the same moment of the machine), then the median.
        added = statistics.median(
            r["p99_ms"] - d["p99_ms"] for r, d in zip(runs[key], direct, strict=True)
        )
        share = statistics.median(
            r["rps"] / d["rps"] for r, d in zip(runs[key], direct, strict=True)
        )
        print(
            f"{labels[key]:<36}{added:>+13.2f}  {verdict(added <= MAX_ADDED_P99_MS):<17}"
            f"{share:>24.1%}  {verdict(share >= MIN_THROUGHPUT_SHARE)}"
        )

    # The journal's cost: the same router with and without it, round by round.
    share = statistics.median(
        r["rps"] / n["rps"] for r, n in zip(runs["one"], runs["nojournal"], strict=True)
    )
    added = statistics.median(
        r["p99_ms"] - n["p99_ms"] for r, n in zip(runs["one"], runs["nojournal"], strict=True)
    )
    print(
        f"the crash journal's cost (1 variant, journal on vs off): {share:.1%} of the "
        f"throughput, p99 {added:+.2f} ms  (target >= {MIN_JOURNAL_SHARE:.0%}: "
        f"{verdict(share >= MIN_JOURNAL_SHARE)})"
    )

    print("\nprediction logs, counted in the SQLite files after the routers stopped:")
    width = 46 if args.rounds > 1 else 36
    print(f"{'run':<{width}}{'wrk answers':>12}{'router 200s':>12}{'log rows':>10}  by variant")
    consistent = True
    in_flight = []
    for key in ("one", "two", "nojournal"):
        log = result[key]["log"]
        for n, f in enumerate(runs[key], start=1):
            variants = log.get(f["prefix"], {})
            rows = sum(variants.values())
            consistent &= rows == f["answered"]
            in_flight.append(f["answered"] - f["requests"])
            split = ", ".join(
                f"{v} {c:,} ({c / rows:.1%})" for v, c in sorted(variants.items()) if rows
            )
            name = labels[key] + (f", round {n}" if args.rounds > 1 else "")
            print(f"{name:<{width}}{f['requests']:>12,}{f['answered']:>12,}{rows:>10,}  {split}")
    for key in ("one", "two", "nojournal"):
        r = result[key]
        code = r["exit_code"]
        ended = f"ended on signal {-code}" if code < 0 else f"exited with code {code}"
        total = sum(sum(v.values()) for v in r["log"].values())
        print(
            f"{labels[key]}: {total:,} rows in the file (warm-up included), "
            f"duration_router_log_rows_written_total {r['written_metric']:,}, dropped "
            f"{r['dropped_metric']:,}; {ended} (a graceful shutdown flushes the log)"
        )
    print(
        f"log rows == predictions the router answered: {'yes' if consistent else 'NO'}; wrk "
        f"counted {', '.join(map(str, in_flight))} fewer: the requests in flight when it "
        f"stopped (at most {args.connections} per run)"
    )
    rollbacks = result["two"]["guardrail_rollbacks"]
    if result["table_changed"] or rollbacks:
        print(
            f"warning: the 50/50 table changed during the runs ({rollbacks} guardrail "
            f"rollbacks): {result['table_after']}"
        )
    for label, tail in result["server_logs"].items():
        print(f"\nwarning: {label} answered with errors; the end of its log:\n{tail}")
    return consistent


def main() -> int:
    """Set up, measure the four servers, print the tables; 1 when a log lost predictions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of each wrk run (15)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (32)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per server (3)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each server this many times, interleaved; the tables "
                        "show medians (default 1; 3 or more on a busy machine)")  # fmt: skip
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="sample the 50/50 router with py-spy during its last run into FILE "
                        "(.svg flame graph, .json speedscope, else collapsed stacks)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--router-env", action="append", default=[], metavar="NAME=VALUE",
        help="a router setting for this run, e.g. DURATION_ROUTER_LOG_FLUSH_SECONDS=1 "
        "(repeatable)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    for item in args.router_env:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("DURATION_ROUTER_"):
            parser.error(f"--router-env {item!r}: expected DURATION_ROUTER_NAME=VALUE")
        ROUTER_ENV[name] = value
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    if args.rounds < 1 or args.duration < 1 or args.connections < 1 or args.warmup < 1:
        parser.error("--rounds, --duration, --connections and --warmup must be at least 1")
    if args.profile:
        args.profile = args.profile.resolve()

    folder = Path(tempfile.mkdtemp(prefix="bench-router-"))
    try:
        result = bench(folder, args)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    consistent = report(args, result)
    if args.profile:
        print(f"py-spy profile of the 50/50 router's last run: {args.profile}")
    if args.json:
        print(json.dumps(result, default=str))
    return 0 if consistent else 1


if __name__ == "__main__":
    sys.exit(main())
