"""The loop's steps against a stand-in router: a refusal by the router ends the rollout (it is
not asked again at every pass), and the gate's smoke test refuses implausible versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from duration_operations.ledger import Ledger
from duration_operations.operations import Operations
from duration_operations.passes import Snapshot
from duration_operations.policy import load_policy
from duration_operations.retraining import _smoke_refusal
from duration_operations.router_gateway import Deployed, RouterRefusedError, RouterState


class Router:
    """Records the calls; ``deploy`` is refused as level 3 refuses a failed smoke test."""

    url = "http://router"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def deploy(self, name: str, version: str, *, shadow: bool, weight: float) -> None:
        self.calls.append(("deploy", version))
        raise RouterRefusedError("POST /deployments: HTTP 422: smoke test failed: ride ...")

    def ab_report(self, since: int) -> dict[str, Any]:
        raise AssertionError("a rollout that has not started has no report to read")

    def remove_challenger(self) -> None:
        self.calls.append(("remove", None))

    def note(self, kind: str, summary: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        self.calls.append((kind, summary))
        return {}


def test_a_refused_stage_ends_the_rollout_with_a_decision(tmp_path: Path, monkeypatch):
    router = Router()
    ops = Operations(router, load_policy(), tracking_uri="sqlite:///x.db", workdir=tmp_path)  # type: ignore[arg-type]
    tags: list[dict[str, Any]] = []
    monkeypatch.setattr("duration_operations.operations.tag_version", lambda *a: tags.append(a[3]))
    retrained = {
        "id": 1, "at": 1.0, "action": "note", "model_version": "2", "actor": "duration-operate",
        "log_position": 0, "table_after": {},
        "note": {"kind": "retrain", "summary": "", "data": {"outcome": "gate passed"}},
    }  # fmt: skip
    state = RouterState(
        1, (Deployed("champion", "1", 1.0, False, None),), {}, "x", "nyc-taxi-duration"
    )
    step = ops.rollout(Snapshot(state, Ledger.from_history([retrained])))
    assert step is not None
    assert step.action == "start"
    assert router.calls[0] == ("deploy", "2")
    kind, summary = router.calls[-1]
    assert kind == "decision"
    assert summary.startswith("v2 rolled back: the router refused to start: POST /deployments")
    assert tags[-1]["decision"].startswith("rolled back: the router refused to start")
    assert ops.metrics.rollbacks._value.get() == 1


def test_the_gate_smoke_test_refuses_negative_durations():
    class Negative:
        def predict(self, rides: Any) -> np.ndarray:
            return np.full(len(rides), -0.73)

    class Fine:
        def predict(self, rides: Any) -> np.ndarray:
            return np.full(len(rides), 12.0)

    refusal = _smoke_refusal(Negative())
    assert refusal is not None
    assert "predicted -0.73 min, outside the plausible 0-180 min" in refusal
    assert _smoke_refusal(Fine()) is None
