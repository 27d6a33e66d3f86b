"""What goes wrong around the loop, pass by pass, against a real ``mlflow server`` and a real
``duration-router``: corrupted feedback is stopped at the pipeline's data gate, the cool-down
holds, freeze stops the rollout between stages, the router killed mid-rollout (``kill -9``)
and the registry stopped before the promotion leave no half state, and the loop resumes where
it was when they come back (the Prefect flow retrying a router that is briefly away).

The traffic is green 2023-03 in twelve parts by pickup time (about 5,800 rides each,
``duration-deploy replay --part K/12``), each replayed once, so every stage sees rides of its
own; a canary stage is fed parts until level 3's always-valid report of that stage says
``promote``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from test_loop import AUTH, MODEL, environment, run, users

from duration_operations.operations import Operations
from duration_operations.policy import load_policy
from duration_operations.retraining import GATE_PASSED, PIPELINE_STOPPED
from duration_operations.rollout import ADVANCE, PROMOTE, START, WAIT
from duration_operations.router_gateway import RouterGateway, RouterUnavailableError
from ladder_testing import stop_process
from ladder_testing.router import TOKEN
from ladder_testing.services import BIN, RouterProcess, Server, start_mlflow_server

PARTS = 12
#: ``duration-deploy replay --part``: green 2023-03 in twelve parts by pickup time.
PARTS_OF_2023 = [f"{k}/{PARTS}" for k in range(1, PARTS + 1)]


class Clock:
    """Wall time plus an offset the test moves (the cool-down is an hour)."""

    def __init__(self) -> None:
        import time

        self._time = time.time
        self.offset = 0.0

    def __call__(self) -> float:
        return self._time() + self.offset


def feedback(url: str, actuals: dict[str, float]) -> None:
    body = {"actuals": [{"ride_id": k, "duration": v} for k, v in actuals.items()]}
    answer = httpx.post(f"{url}/feedback", json=body, headers=AUTH, timeout=120)
    assert answer.status_code == 200, answer.text


def kinds_of(url: str, kind: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{url}/history", params={"kind": kind, "limit": 10_000}, headers=AUTH, timeout=30
    )
    return [e["note"] for e in answer.json()["entries"]]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = start_mlflow_server(tmp_path / "mlflow")
    yield server
    if server.process.poll() is None:
        stop_process(server.process)


def test_corrupted_feedback_cooldown_freeze_and_outages(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Room for a router restart on a loaded 2-core machine (it took over 17 s under load).
    monkeypatch.setattr("duration_operations.flows.RETRY_DELAYS", [5, 10, 20, 30])
    uri = server.url
    env, router_env = users(server, environment(tmp_path, uri), monkeypatch)
    run([str(BIN / "duration-pipeline"), "run", "--train", "green:2021-01",
         "--val", "green:2021-02", "--candidates", "linear", "-q"], env, tmp_path)  # fmt: skip
    router = RouterProcess(tmp_path, uri, router_env).start()
    env["DURATION_ROUTER_URL"] = router.url
    clock = Clock()
    ops = Operations(
        RouterGateway(router.url, TOKEN),
        load_policy(),
        tracking_uri=uri,
        workdir=tmp_path,
        clock=clock,
    )
    replay = [str(BIN / "duration-deploy"), "--url", router.url, "replay", "--rate", "5000"]
    registry = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def versions() -> int:
        return len(registry.search_model_versions(f"name='{MODEL}'"))

    parts = PARTS_OF_2023

    def play(part: str) -> None:
        run([*replay, "--month", "green:2023-03", "--part", part, "--feedback-lag", "300"],
            env, tmp_path)  # fmt: skip

    unplayed = iter(parts[4:])

    def feed_until_decided() -> None:
        """Replay the next parts until the current stage's always-valid test decides."""
        placed = ops.snapshot().ledger.placed("2")
        assert placed is not None
        for part in unplayed:
            play(part)
            report = ops.gateway.ab_report(int(placed["log_position"]))
            if (report["comparison"] or {}).get("verdict") == "promote":
                return
        raise AssertionError("2023-03 ended before the stage decided")

    try:
        # 0. drift, with fewer labelled rides since it began than the policy's 15,000: the
        #    trigger fires, no retrain starts (nor counts against the limits)
        play(parts[0])
        early = ops.run_pass()
        assert [t.trigger for t in early.triggers if t.fired] == ["drift"]
        assert early.retrain is not None
        assert early.retrain.outcome == "too few rides"
        assert kinds_of(router.url, "retrain-started") == []

        # 1. more drifted rides, but the fed-back durations do not belong to their rides
        for part in parts[1:3]:
            play(part)
        rides = ops.gateway.predictions(last=50_000, shadow=False, labelled=True)
        truth = dict(zip(rides["ride_id"], rides["actual"], strict=True))
        shuffled = np.random.default_rng(0).permutation(rides["actual"].to_numpy())
        feedback(router.url, dict(zip(rides["ride_id"], shuffled.tolist(), strict=True)))
        first = ops.run_pass()
        # the 2023 drift, and the shuffled durations' live RMSE too
        assert [t.trigger for t in first.triggers if t.fired] == ["drift", "performance"]
        assert first.retrain is not None
        assert first.retrain.outcome == PIPELINE_STOPPED
        assert "distance_duration" in first.retrain.reason
        assert versions() == 1
        assert router.table(TOKEN) == {"champion": ("1", 1.0, False)}

        # 2. the cool-down: the trigger still fires, no second retrain
        second = ops.run_pass()
        assert second.retrain is None
        assert second.retrain_skipped is not None
        assert second.retrain_skipped.startswith("cool-down: 60 of 60 minutes left")
        assert len(kinds_of(router.url, "retrain-started")) == 1

        # 3. the true durations again, an hour later: retrain, gate, shadow in the same pass
        feedback(router.url, truth)
        clock.offset += 61 * 60
        third = ops.run_pass()
        assert third.retrain is not None
        assert third.retrain.outcome == GATE_PASSED
        assert third.rollout is not None
        assert third.rollout.action == START
        assert router.table(TOKEN) == {
            "champion": ("1", 1.0, False),
            "challenger": ("2", 0.0, True),
        }

        # 4. frozen between stages: the shadow test decides, the stage does not change
        run([str(BIN / "duration-operate"), "freeze", "--reason", "change freeze"], env, tmp_path)
        play(parts[3])
        frozen = ops.run_pass()
        assert frozen.frozen
        assert frozen.rollout is not None
        assert frozen.rollout.action == WAIT
        assert "change freeze" in frozen.rollout.reason
        assert "next: advance" in frozen.rollout.reason
        assert router.table(TOKEN)["challenger"] == ("2", 0.0, True)
        run([str(BIN / "duration-operate"), "unfreeze"], env, tmp_path)
        thawed = ops.run_pass()
        assert thawed.rollout is not None
        assert thawed.rollout.action == ADVANCE
        assert router.table(TOKEN)["challenger"] == ("2", 0.1, False)

        # 5. the router killed mid-rollout: a pass fails, nothing moves; the Prefect flow
        #    retries until the restarted router answers, and carries on from the same stage
        before = router.table(TOKEN)
        router.kill()
        with pytest.raises(RouterUnavailableError):
            ops.run_pass()
        from prefect.testing.utilities import prefect_test_harness

        from duration_operations.flows import build_flows

        restart = threading.Timer(3.0, router.start)
        with prefect_test_harness(server_startup_timeout=180):
            restart.start()
            resumed = build_flows(ops).monitor()
        restart.join()
        assert router.table(TOKEN) == before
        assert resumed["rollout"]["action"] == WAIT
        assert resumed["rollout"]["reading"]["stage"] == "canary-10"
        feed_until_decided()
        assert ops.run_pass().rollout.action == ADVANCE  # type: ignore[union-attr]
        assert router.table(TOKEN)["challenger"] == ("2", 0.5, False)

        # 6. the registry away when the promotion is due: refused, table and aliases unchanged
        feed_until_decided()
        port = int(uri.rsplit(":", 1)[1])
        stop_process(server.process)
        with pytest.raises(RouterUnavailableError, match="503"):
            ops.run_pass()
        assert router.table(TOKEN) == {
            "champion": ("1", 0.5, False),
            "challenger": ("2", 0.5, False),
        }
        server.process = start_mlflow_server(server.folder, port=port).process
        aliases = {a: str(v) for a, v in registry.get_registered_model(MODEL).aliases.items()}
        assert aliases == {"champion": "1", "challenger": "2"}
        done = ops.run_pass()
        assert done.rollout is not None
        assert done.rollout.action == PROMOTE
        assert router.table(TOKEN) == {"champion": ("2", 1.0, False)}
        aliases = {a: str(v) for a, v in registry.get_registered_model(MODEL).aliases.items()}
        assert aliases == {"champion": "2"}
        stages = [n["data"]["stage"] for n in kinds_of(router.url, "stage")]
        assert stages == ["shadow", "canary-10", "canary-50"]  # each stage entered once
        assert [n["data"]["decision"] for n in kinds_of(router.url, "decision")] == ["promoted"]
        assert len(kinds_of(router.url, "retrain-started")) == 2
    finally:
        ops.gateway.close()
        if router.process is not None and router.process.poll() is None:
            router.stop()
