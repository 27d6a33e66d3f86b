"""The demo's level-4 step: the closed loop on the bundled months, with no call from the demo.

A registry whose champion is the course's linear model (green 2021-01); `duration-router`
serves it and `duration-operate run` watches the router (its Prefect flows every second). A
replay of green 2021-03 with feedback leaves the loop quiet; a replay of green 2023-03 with the
actual durations fed back 300 rides late makes it fire on drift, retrain on the labelled 2023
production rides, pass the gate, and take the new version through shadow, canary 10% and
canary 50% to champion. The demo only replays traffic and reads the router's history.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx

QUIET_RIDES = 6_000
PARTS = 12
#: The default policy with a pass a second and no cool-down: a replay compresses days.
POLICY = Path(__file__).resolve().parents[1] / "level4_operations" / "workshop-policy.toml"
LAG = 300


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check: Callable[[], Any], what: str, seconds: float, *processes: subprocess.Popen) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise SystemExit(f"{process.args[0]} exited with code {process.returncode}")
        try:
            if value := check():
                return value
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"no {what} within {seconds:g} s")


def _drift_fired(note: dict[str, Any]) -> dict[str, Any] | None:
    """The fired drift reading of a monitor note, or None."""
    return next(
        (t for t in note["data"]["triggers"] if t["trigger"] == "drift" and t["fired"]), None
    )


def run_level4(folder: Path) -> dict[str, Any]:
    """Run the step in ``folder`` (emptied first); the figures the summary prints."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    port, metrics_port = _free_port(), _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "DURATION_ROUTER", "PREFECT_"))
    }
    env |= {
        "DURATION_ROUTER_TOKEN": secrets.token_urlsafe(24),
        "DURATION_ROUTER_URL": url,
        "DURATION_ROUTER_SMOKE_MAX_SECONDS": "30",  # a busy 2-core machine (see level 3)
        "PREFECT_HOME": str(folder / "prefect"),
    }
    headers = {"Authorization": f"Bearer {env['DURATION_ROUTER_TOKEN']}"}

    def step(*command: str) -> str:
        print(f"$ {' '.join(command)}", flush=True)
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stderr[-3000:])
            raise SystemExit(f"{command[0]} failed with exit code {done.returncode}")
        return done.stdout

    def notes(kind: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{url}/history", params={"kind": kind, "limit": 10_000},
                           headers=headers, timeout=30)  # fmt: skip
        answer.raise_for_status()
        return [e["note"] | {"at": e["at"], "model_version": e["model_version"]}
                for e in answer.json()["entries"]]  # fmt: skip

    def passed_since(moment: float) -> bool:
        answer = httpx.get(f"{url}/history", params={"kind": "monitor", "limit": 1},
                           headers=headers, timeout=30)  # fmt: skip
        entries = answer.json()["entries"]
        return bool(entries) and entries[-1]["at"] > moment

    def last_id() -> int:
        answer = httpx.get(f"{url}/predictions", params={"last": 1}, headers=headers, timeout=30)
        return int(answer.json()["last_id"])

    step("duration-pipeline", "run", "--train", "green:2021-01", "--val", "green:2021-02",
         "--candidates", "linear", "--quiet")  # fmt: skip
    print(f"$ duration-router --port {port} &   duration-operate --policy "
          f"level4_operations/workshop-policy.toml run --metrics-port {metrics_port} &",
          flush=True)  # fmt: skip
    router = subprocess.Popen(["duration-router", "--port", str(port), "--log-level", "warning"],
                              cwd=folder, env=env)  # fmt: skip
    loop_log = (folder / "loop.log").open("w")
    loop = subprocess.Popen(
        ["duration-operate", "--policy", str(POLICY), "run", "--metrics-port", str(metrics_port)],
        cwd=folder, env=env, stdout=loop_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait(lambda: httpx.get(f"{url}/ready", timeout=1).status_code == 200, "router", 120,
              router)  # fmt: skip
        step("duration-deploy", "replay", "--month", "green:2021-03", "--rate", "3000",
             "--limit", str(QUIET_RIDES), "--feedback-lag", str(LAG))  # fmt: skip
        replayed = time.time()
        quiet = _wait(
            lambda: [n for n in notes("monitor") if n["at"] > replayed + 0.5],
            "monitor pass after the 2021-03 replay", 120, loop, router,
        )[-1]  # fmt: skip
        onset, onset_at = last_id(), time.time()
        # The month is sent a twelfth at a time, each part once the loop has passed since the
        # last: traffic paced to the loop, so a retrain on a busy machine cannot let the month
        # run out before the rollout ends. The demo stops sending once the loop has decided.
        print(f"$ duration-deploy replay --month green:2023-03 --part K/{PARTS} --rate 3000 "
              f"--feedback-lag {LAG}   (K = 1, 2, ... until the loop decides)",
              flush=True)  # fmt: skip
        decided = None
        for k in range(1, PARTS + 1):
            subprocess.run(
                ["duration-deploy", "replay", "--month", "green:2023-03", "--part",
                 f"{k}/{PARTS}", "--rate", "3000", "--feedback-lag", str(LAG)],
                cwd=folder, env=env, check=True, capture_output=True,
            )  # fmt: skip
            _wait(partial(passed_since, time.time()), "monitor pass", 300, loop, router)
            if found := notes("decision"):
                decided = found[-1]
                break
        if decided is None:
            decided = _wait(lambda: notes("decision"), "decision", 120, loop, router)[-1]
        sent = last_id() - onset
        fired_first = next(
            n for n in notes("monitor") if n["at"] > onset_at and _drift_fired(n) is not None
        )
        starts, retrains, stages = notes("retrain-started"), notes("retrain"), notes("stage")
        reports = folder / "reports"
        step("duration-operate", "timeline", "--out", str(reports / "timeline.html"))
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    finally:
        for process in (loop, router):  # the loop first: it would only see the router go
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        loop_log.close()
    return {
        "quiet": quiet,
        "onset": onset,
        "onset_at": onset_at,
        "sent_2023": sent,
        "fired_first": fired_first,
        "starts": starts,
        "retrains": retrains,
        "stages": stages,
        "decision": decided,
        "timeline": reports / "timeline.html",
        "metrics": metrics,
        "seconds": time.perf_counter() - start,
    }


def print_level4(level4: dict[str, Any], rel: Callable[[Path], Path]) -> bool:
    """The level-4 lines of the summary; True when the loop promoted a retrained version."""
    readings = {t["trigger"]: t for t in level4["quiet"]["data"]["triggers"]}
    drift, perf = readings["drift"]["figures"], readings["performance"]["figures"]
    quiet_psi = max(max(w["psi"].values()) for w in drift.get("windows", [{"psi": {"-": 0}}]))
    print(f"4  operations: duration-operate (Prefect flows, a pass a second) watched the router "
          f"and closed the loop on its own ({level4['seconds']:.1f}s)")  # fmt: skip
    rmse = perf.get("live_rmse")
    rmse_text = "n/a" if rmse is None else f"{rmse:.2f} min (trigger above {perf['bar']:.2f})"
    print(f"   green 2021-03, {QUIET_RIDES:,} rides with feedback: quiet - largest PSI "
          f"{quiet_psi:.2f} (threshold 0.3), live RMSE {rmse_text}")  # fmt: skip
    ok = bool(level4["starts"]) and level4["decision"]["data"]["decision"] == "promoted"
    if not level4["starts"]:
        print("   green 2023-03: no trigger fired")
        return False
    start = level4["starts"][0]
    first = level4["fired_first"]
    windows = (_drift_fired(first) or {}).get("figures", {}).get("windows", [])
    psi = min(w["psi"]["PULocationID"] for w in windows) if windows else float("nan")
    rides = windows[-1]["last_id"] - level4["onset"] if windows else 0
    print(f"   green 2023-03 with feedback {LAG} rides late: drift fired {rides:,} rides and "
          f"{first['at'] - level4['onset_at']:.0f}s after the onset (PULocationID PSI >= "
          f"{psi:.2f} in {len(windows)} windows of 2,500); the retrain waited for 15,000 "
          f"labelled rides since the onset ({start['at'] - level4['onset_at']:.0f}s)")  # fmt: skip
    for failed in level4["retrains"][:-1]:
        print(f"   retrain refused at the gate: {failed['summary']}")
    retrain = level4["retrains"][-1]["data"]
    data = retrain["data"] or {}
    print(f"   retrained: {retrain['reason']}")
    if data:
        print(f"     on {data['train_rows']:,} + {data['holdout_rows']:,} labelled production "
              f"rides (train sha256 {data['train_sha256'][:12]}, holdout "
              f"{data['holdout_sha256'][:12]}) -> {retrain['outcome']}")  # fmt: skip
    path = []
    for stage in [*level4["stages"][1:], level4["decision"]]:
        reading = stage["data"].get("previous") or stage["data"].get("reading") or {}
        p = reading.get("p_value")
        p_text = "n/a" if p is None else f"{p:.1e}"
        path.append(f"{reading.get('stage')} decided on {reading.get('labelled', 0):,} labelled "
                    f"rides (always-valid p = {p_text})")  # fmt: skip
    print("   rollout: " + " -> ".join(path))
    seconds = level4["decision"]["at"] - start["at"]
    decision = level4["decision"]
    print(f"   {decision['data']['decision']}: champion v{decision['model_version']}, "
          f"{seconds:.0f}s after the retrain started and {level4['sent_2023']:,} rides into "
          f"2023-03; timeline: {rel(level4['timeline'])}")  # fmt: skip
    return ok
