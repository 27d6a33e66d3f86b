"""Benchmark: the closed loop on replayed real months.

1. **End to end** (real processes: an embedded SQLite registry, ``duration-router``,
   ``duration-operate run`` with Prefect, a pass a second): the champion is the course's
   linear model on green 2021-01; 6,000 rides of green 2021-03 (quiet), then 2023-03 a
   twelfth at a time (each part once the loop has passed since the last) at ``--rate``
   rides/s with feedback ``--lag`` rides behind; the workshop policy (no cool-down).
   Printed: rides and seconds from the drift onset (the first 2023 ride) to the trigger, and
   from the trigger to the promotion, stage by stage (labelled challenger rides and rides
   sent when each stage was decided).
2. **Against a fixed-horizon plan** for the same effect: from each stage's logged predictions,
   the labelled challenger rides a test looked at once would need for 80 % power at alpha 0.05
   at the effect the stage measured (paired for the shadow, Welch-type at the canary split),
   turned into rides at the stage's share; summed, the rides a fixed-horizon rollout would
   wait from the trigger to the promotion, against what the always-valid rollout took.
3. **A/A under the loop's continuous looks**: both sides the linear model, real rides of
   green 2021-03, a canary stage of the policy (10 % and 50 %) looked at every 100 labelled
   challenger rides from ``min_labelled`` to ``max_labelled``: the share of experiments in
   which the loop would have acted (advanced or rolled back), always valid against acting on
   the first fixed-horizon Welch p < 0.05.

Usage: ``python level4_operations/benchmarks/bench_loop.py [--rate 1500] [--experiments 200]``
(or ``tox -e bench-loop``). About 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from scipy import stats

from duration_deployment.analysis import INCONCLUSIVE, ab_report
from duration_operations.policy import load_policy
from ladder_testing.ab import month_predictions, random_split_frame, welch_decides_at_some_look
from ladder_testing.net import free_port

BIN = Path(sys.executable).parent
#: The default policy with a pass a second and no cool-down (a replay compresses days).
WORKSHOP_POLICY = Path(__file__).resolve().parents[1] / "workshop-policy.toml"
ALPHA, POWER = 0.05, 0.8
Z = stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER)


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{args[0]} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def end_to_end(folder: Path, rate: int, lag: int) -> dict[str, Any]:
    """Part 1; the notes, the onset and the stage frames part 2 needs."""
    port, token = free_port(), secrets.token_urlsafe(24)
    url = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "DURATION_ROUTER", "PREFECT_"))
    }
    env |= {"DURATION_ROUTER_TOKEN": token, "DURATION_ROUTER_URL": url,
            "DURATION_ROUTER_SMOKE_MAX_SECONDS": "30",
            "PREFECT_HOME": str(folder / "prefect")}  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    _run([str(BIN / "duration-pipeline"), "run", "--train", "green:2021-01", "--val",
          "green:2021-02", "--candidates", "linear", "-q"], env, folder)  # fmt: skip
    log = (folder / "processes.log").open("w")
    router = subprocess.Popen([str(BIN / "duration-router"), "--port", str(port)], cwd=folder,
                              env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    loop = subprocess.Popen([str(BIN / "duration-operate"), "--policy", str(WORKSHOP_POLICY),
                             "run"], cwd=folder, env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip

    def get(path: str, **params: Any) -> Any:
        answer = httpx.get(f"{url}{path}", params=params, headers=headers, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def notes(kind: str) -> list[dict[str, Any]]:
        return [e["note"] | {"at": e["at"], "log_position": e["log_position"]}
                for e in get("/history", kind=kind, limit=10_000)["entries"]]  # fmt: skip

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the router did not start")
            time.sleep(0.2)
        replay = [str(BIN / "duration-deploy"), "replay", "--feedback-lag", str(lag)]
        _run(
            [*replay, "--month", "green:2021-03", "--limit", "6000", "--rate", "3000"], env, folder
        )
        while not notes("monitor"):  # Prefect's first start
            time.sleep(0.5)
        onset, onset_at = get("/predictions", last=1)["last_id"], time.time()
        # a twelfth of the month at a time, each once the loop has passed since the last
        for k in range(1, 13):
            if notes("decision"):
                break
            _run([*replay, "--month", "green:2023-03", "--part", f"{k}/12", "--rate", str(rate)],
                 env, folder)  # fmt: skip
            sent = time.time()
            while not [n for n in notes("monitor")[-1:] if n["at"] > sent]:
                if loop.poll() is not None:
                    raise SystemExit("the loop stopped")
                time.sleep(0.5)
        if not notes("decision"):
            raise SystemExit("the month ended without a decision")
        result = {
            "onset": onset,
            "onset_at": onset_at,
            "starts": notes("retrain-started"),
            "retrains": notes("retrain"),
            "stages": notes("stage"),
            "decision": notes("decision")[-1],
            "frames": [],
        }
        positions = [s["log_position"] for s in result["stages"]] + [
            result["decision"]["log_position"]
        ]
        for since, until in itertools.pairwise(positions):
            page = get("/predictions", after_id=since, last=200_000, labelled=True)
            frame = pd.DataFrame(page["rows"], columns=page["columns"])
            result["frames"].append(frame[frame["id"] <= until])
        return result
    finally:
        for process in (loop, router):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        log.close()


def fixed_plan(frame: pd.DataFrame, shadow: bool) -> tuple[int, float]:
    """Labelled challenger rides a once-looked test needs at the effect ``frame`` shows, and
    the challenger's share of the stage's live rides (1 for a shadow: every ride is a pair)."""
    frame = frame[~frame["forced"].astype(bool)]
    se = (frame["prediction"].astype(float) - frame["actual"].astype(float)) ** 2
    if shadow:
        pairs = frame.pivot_table(
            index="ride_id", columns="shadow", values="prediction", aggfunc="last"
        )
        actual = frame.groupby("ride_id")["actual"].last().reindex(pairs.index)
        d = ((pairs[True] - actual) ** 2 - (pairs[False] - actual) ** 2).dropna()
        return math.ceil(Z**2 * d.var(ddof=1) / d.mean() ** 2), 1.0
    live = frame[~frame["shadow"].astype(bool)]
    side = live["variant"] == "challenger"
    a, b = se[live.index][~side], se[live.index][side]
    k = len(a) / len(b)
    delta = b.mean() - a.mean()
    n = Z**2 * (a.var(ddof=1) / k + b.var(ddof=1)) / delta**2
    return math.ceil(n), float(side.mean())


def aa_rates(experiments: int, seed: int = 0) -> list[tuple[str, float, float]]:
    """Part 3: (stage, always-valid decision share, Welch-at-some-look share)."""
    actual, models = month_predictions()
    linear = models["linear"]
    rng = np.random.default_rng(seed)
    out = []
    for stage in load_policy().rollout.stages:
        if stage.shadow:
            continue
        rides = math.ceil(stage.max_labelled / stage.weight)
        decided = welch = 0
        for _ in range(experiments):
            frame = random_split_frame(actual, linear, linear, rides=min(rides, actual.size),
                                       share=stage.weight, rng=rng)  # fmt: skip
            side = (frame["variant"] == "challenger").to_numpy()
            positions = np.flatnonzero(side)
            looks = [
                positions[n - 1] + 1 for n in range(stage.min_labelled, len(positions) + 1, 100)
            ]
            verdicts = (ab_report(frame.iloc[:end]).comparison for end in looks)
            decided += any(c is not None and c.verdict != INCONCLUSIVE for c in verdicts)
            look = max(1, round(100 / stage.weight))  # about 100 challenger rides per look
            welch += welch_decides_at_some_look(frame, look=look, min_labelled=stage.min_labelled)
        out.append((stage.name, decided / experiments, welch / experiments))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=3000, help="2023-03 replay, rides per second")
    parser.add_argument("--lag", type=int, default=300, help="feedback lag, rides")
    parser.add_argument("--experiments", type=int, default=200, help="A/A experiments per stage")
    args = parser.parse_args()
    policy = load_policy()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run = end_to_end(Path(tmp), args.rate, args.lag)
        seconds = time.perf_counter() - started
    start, decision = run["starts"][0], run["decision"]
    windows = start["data"]["triggers"][0]["figures"].get("windows", [])
    trigger_rides = windows[-1]["last_id"] - run["onset"] if windows else float("nan")
    print(f"1. end to end ({seconds:.0f} s in all): green 2023-03 at {args.rate:,} rides/s, "
          f"feedback {args.lag} rides late")  # fmt: skip
    waited = start["at"] - run["onset_at"]
    print(f"   drift onset -> trigger: {trigger_rides:,} rides, {waited:.1f} s "
          f"({start['data']['triggers'][0]['trigger']})")  # fmt: skip
    retrain = run["retrains"][0]["data"]
    print(f"   retrain: {retrain['reason']}")
    previous = start
    always_rides = 0
    for note in [*run["stages"][1:], decision]:
        reading = note["data"].get("previous") or note["data"].get("reading")
        rides = note["log_position"] - previous["log_position"]
        always_rides += rides
        print(f"   {reading['stage']:<10} decided at {reading['labelled']:>6,} labelled challenger "
              f"rides, {rides:>6,} rides logged, {note['at'] - previous['at']:5.1f} s, p = "
              f"{reading['p_value']:.1e}")  # fmt: skip
        previous = note
    print(f"   trigger -> promotion: {decision['log_position'] - start['log_position']:,} rides "
          f"logged, {decision['at'] - start['at']:.1f} s")  # fmt: skip
    print("2. fixed-horizon plan for the same effects (80% power, alpha 0.05, looked at once):")
    plan_rides = 0
    for stage, frame in zip(policy.rollout.stages, run["frames"], strict=True):
        n, share = fixed_plan(frame, stage.shadow)
        need = max(n, stage.min_labelled)
        rides = need if stage.shadow else math.ceil(need / share)
        plan_rides += rides
        print(f"   {stage.name:<10} plan {n:>6,} labelled challenger rides -> {rides:>6,} rides")
    print(f"   stages: always valid {always_rides:,} rides logged (shadow rows count twice), "
          f"fixed-horizon plan {plan_rides:,} rides")  # fmt: skip
    print(f"3. A/A under the loop's looks (every 100 labelled challenger rides, "
          f"{args.experiments} experiments, real rides of green 2021-03):")  # fmt: skip
    for stage, always, welch in aa_rates(args.experiments):
        print(f"   {stage:<10} a decision: always valid {always:.1%}, "
              f"Welch at some look {welch:.1%} (alpha {ALPHA:.0%})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
