"""The closed loop end to end: a real ``mlflow server``, a real ``duration-router`` and
``duration-operate run`` (the Prefect flows, the embedded Prefect API), on real months.

The champion is the course's linear model on green 2021-01. Replays of 2021-02 and 2021-03
with their feedback leave the loop quiet; a replay of 2023-03 with feedback a few hundred rides
behind makes it fire on drift, retrain on the labelled 2023 production rides, pass the gate,
and take the retrained version through shadow, canary 10% and canary 50% to champion, with no
call from the test. Then what was recorded: the history, the version's tags, the metrics
(checked by promtool), the Prefect flow runs, the timeline page in headless Chromium.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow.tracking import MlflowClient

from ladder_testing import free_port, stop_process, wait_until_answers
from ladder_testing.browser import load_page
from ladder_testing.mlflow_auth import PIPELINE_GRANTS, ROUTER_GRANTS
from ladder_testing.programs import promtool_problems
from ladder_testing.prometheus import sample
from ladder_testing.router import TOKEN
from ladder_testing.services import BIN, RouterProcess, Server, mlflow_server

MODEL = "nyc-taxi-duration"
WORKSHOP_POLICY = Path(__file__).resolve().parents[1] / "workshop-policy.toml"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> str:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args[0]} failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


def environment(tmp: Path, tracking_uri: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "DURATION_", "PREFECT_"))
    }
    env |= {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "DURATION_ROUTER_TOKEN": TOKEN,
        "DURATION_ROUTER_LOG_FLUSH_SECONDS": "0.05",
        # The smoke test's 2 s budget is a production guard, not what these tests check.
        "DURATION_ROUTER_SMOKE_MAX_SECONDS": "60",
        "PREFECT_HOME": str(tmp / "prefect"),
    }
    return env | extra


def users(
    server: Server, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, str], dict[str, str]]:
    """The environments of the loop's user (the pipeline, ``duration-operate`` and this test's
    own MLflow calls, through ``monkeypatch``) and of the router's (the server runs MLflow's
    basic-auth app; level 3's README lists what each needs)."""
    loop = server.add_user("loop", PIPELINE_GRANTS).env
    for name, value in loop.items():
        monkeypatch.setenv(name, value)
    return env | loop, env | server.add_user("router", ROUTER_GRANTS).env


def history(url: str, **params: Any) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{url}/history", headers=AUTH, params={"limit": 10_000, **params}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["entries"])


def notes(url: str, kind: str) -> list[dict[str, Any]]:
    return [e["note"] | {"model_version": e["model_version"]} for e in history(url, kind=kind)]


def passed_since(url: str, moment: float) -> bool:
    """Whether a monitor pass ended after Unix time ``moment``."""
    latest = history(url, kind="monitor", limit=1)
    return bool(latest) and latest[-1]["at"] > moment


def wait_for(
    check: Any, what: str, timeout: float, loop: subprocess.Popen[bytes], log: Path
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        assert loop.poll() is None, (
            f"the loop exited ({loop.returncode}):\n{log.read_text()[-3000:]}"
        )
        time.sleep(1)
    raise AssertionError(f"no {what} after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def test_the_loop_retrains_and_promotes_on_2023_drift_with_no_call_from_the_test(
    tracking_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = tracking_server.url
    env, router_env = users(tracking_server, environment(tmp_path, uri), monkeypatch)
    run([str(BIN / "duration-pipeline"), "run", "--train", "green:2021-01",
         "--val", "green:2021-02", "--candidates", "linear", "-q"], env, tmp_path)  # fmt: skip
    router = RouterProcess(tmp_path, uri, router_env).start()
    env["DURATION_ROUTER_URL"] = router.url
    metrics_port = free_port()
    loop_log = tmp_path / "loop.log"
    loop = subprocess.Popen(
        [str(BIN / "duration-operate"), "--policy", str(WORKSHOP_POLICY), "run",
         "--metrics-port", str(metrics_port)],
        env=env, cwd=tmp_path, stdout=loop_log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    replay = [str(BIN / "duration-deploy"), "--url", router.url, "replay"]
    try:
        wait_until_answers(f"http://127.0.0.1:{metrics_port}/metrics", loop, loop_log, timeout=180)
        wait_for(lambda: notes(router.url, "monitor"), "first pass", 180, loop, loop_log)

        # 2021-02 and 2021-03: no drift, RMSE as expected, no retrain
        for spec in ("green:2021-02", "green:2021-03"):
            run([*replay, "--month", spec, "--rate", "3000", "--limit", "5000",
                 "--feedback-lag", "300"], env, tmp_path)  # fmt: skip
        seen = len(notes(router.url, "monitor"))
        wait_for(
            lambda: len(notes(router.url, "monitor")) >= seen + 2, "passes", 120, loop, loop_log
        )
        quiet = notes(router.url, "monitor")[-1]["data"]
        readings = {t["trigger"]: t for t in quiet["triggers"]}
        assert not any(t["fired"] for t in quiet["triggers"]), readings
        assert max(max(w["psi"].values()) for w in readings["drift"]["figures"]["windows"]) < 0.25
        live = readings["performance"]["figures"]["live_rmse"]
        assert live == pytest.approx(readings["performance"]["figures"]["val_rmse"], rel=0.1)
        assert notes(router.url, "retrain-started") == []

        # 2023-03 with feedback 300 rides behind, a twelfth of the month at a time, each sent
        # once the loop has passed since the last (traffic paced to the loop, so a retrain
        # on a busy machine does not let the month run out); the loop does the rest
        for k in range(1, 13):
            if notes(router.url, "decision"):
                break
            run([*replay, "--month", "green:2023-03", "--part", f"{k}/12", "--rate", "3000",
                 "--feedback-lag", "300"], env, tmp_path)  # fmt: skip
            wait_for(partial(passed_since, router.url, time.time()), "pass", 300, loop, loop_log)
        decided = wait_for(lambda: notes(router.url, "decision"), "decision", 60, loop, loop_log)
        time.sleep(3)  # a pass or two after the promotion
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        retrains = notes(router.url, "retrain")
        stages = notes(router.url, "stage")
        starts = notes(router.url, "retrain-started")
        state = httpx.get(f"{router.url}/deployments", headers=AUTH, timeout=30).json()
        page = tmp_path / "timeline.html"
        run([str(BIN / "duration-operate"), "timeline", "--out", str(page)], env, tmp_path)
    finally:
        stop_process(loop)
        router.stop()
    assert "Traceback" not in loop_log.read_text()
    assert [d["data"]["decision"] for d in decided] == ["promoted"], decided
    # a gbm trained on few rides can predict a negative duration for a sample ride (measured:
    # -0.73 min for 264 -> 264, 0.0 mi): the gate's smoke test stops it and, with the
    # workshop policy's cool-down of 0, the next pass retrains on more rides
    assert 1 <= len(starts) == len(retrains) <= 3
    outcomes = [r["data"]["outcome"] for r in retrains]
    assert outcomes == ["gate failed"] * (len(retrains) - 1) + ["gate passed"]
    assert all("smoke test" in r["summary"] for r in retrains[:-1])
    fired = starts[0]["data"]["triggers"]
    assert [t["trigger"] for t in fired] == ["drift"]
    assert all(w["psi"]["PULocationID"] > 0.3 for w in fired[0]["figures"]["windows"])
    retrain = retrains[-1]
    version = retrain["model_version"]
    assert retrain["data"]["outcome"] == "gate passed"
    data = retrain["data"]["data"]
    assert data["train_rows"] + data["holdout_rows"] >= 15_000  # the policy's min_rides
    # only 2023 rides: from the first drifted window on (since_drift_onset)
    # after the 2021-02 and 2021-03 rides (the first drifted window may hold a few of them)
    assert starts[-1]["data"]["after_id"] >= 9_000
    assert len(data["train_sha256"]) == 64
    assert len(data["holdout_sha256"]) == 64
    assert retrain["data"]["improvement"] > 0.05
    assert [s["data"]["stage"] for s in stages] == ["shadow", "canary-10", "canary-50"]
    assert all(s["model_version"] == version for s in stages)
    for s in stages[1:]:  # each advance was decided by the always-valid test of its stage
        assert s["data"]["previous"]["verdict"] == "promote"
        assert s["data"]["previous"]["design"] == "always valid"
    assert decided[0]["data"]["reading"]["stage"] == "canary-50"

    # the registry: v2 is champion, no challenger is left, the decisions are on the version
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    aliases = {a: str(v) for a, v in client.get_registered_model(MODEL).aliases.items()}
    assert aliases == {"champion": version}
    assert [v["model_version"] for v in state["table"]["variants"]] == [version]
    tags = client.get_model_version(MODEL, version).tags
    assert json.loads(tags["operations.gate"])["outcome"] == "gate passed"
    assert json.loads(tags["operations.data"])["holdout_sha256"] == data["holdout_sha256"]
    assert {
        "operations.stage.shadow",
        "operations.stage.canary-10",
        "operations.stage.canary-50",
    } <= set(tags)
    assert tags["operations.decision"].startswith("promoted: canary-50")

    # the metrics, as Prometheus reads them
    assert promtool_problems(metrics) == ""
    assert sample(metrics, "duration_operations_promotions_total") == 1
    assert sample(metrics, "duration_operations_retrains_total", outcome="gate passed") == 1
    failed = sample(metrics, "duration_operations_retrains_total", outcome="gate failed")
    assert failed == len(retrains) - 1
    assert (
        sample(metrics, "duration_operations_trigger_readings_total", trigger="drift", fired="true")
        >= 1
    )
    assert sample(metrics, "duration_operations_rollbacks_total") == 0
    assert sample(metrics, "duration_operations_passes_total", outcome="error") == 0

    # Prefect recorded the flows: monitor passes with retrain and rollout as subflows
    with sqlite3.connect(tmp_path / "prefect" / "prefect.db") as db:
        runs = dict(db.execute(
            "select flow.name, count(*) from flow_run join flow on flow.id = flow_run.flow_id "
            "where flow_run.state_type = 'COMPLETED' group by flow.name"
        ).fetchall())  # fmt: skip
    # a retrain flow also runs when there are too few rides since the onset yet (no note)
    assert runs["retrain"] >= len(retrains)
    assert runs["monitor"] >= 10
    assert runs["rollout"] >= 10

    # the timeline, in a browser
    loaded = load_page(page.read_text("utf-8"))
    assert loaded.plots == ["psi", "live-rmse"]
    assert loaded.images_loaded == 2
    assert loaded.requests == ["/", "/page.html"]  # the harness, then the page alone
    assert f"Champion v{version}" in loaded.texts["status"]
    events = loaded.texts["events"]
    assert events.count("stage") >= 3
    assert f"v{version} promoted" in events
    assert "retrain" in events
