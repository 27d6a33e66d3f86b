"""The rollout's decisions, stage by stage, from the table, the history and the A/B report
(level 3's JSON shapes); what the loop then does is tested end to end in test_loop.py."""

from __future__ import annotations

from typing import Any

import pytest

from duration_operations.ledger import Ledger
from duration_operations.policy import Rollout, Stage
from duration_operations.rollout import (
    ADVANCE,
    PROMOTE,
    RECORD,
    ROLL_BACK,
    START,
    WAIT,
    next_step,
    stage_of,
)
from duration_operations.router_gateway import Deployed, RouterState

POLICY = Rollout()


def state(*variants: tuple[str, str, float, bool]) -> RouterState:
    return RouterState(
        revision=len(variants),
        variants=tuple(Deployed(n, v, w, s, None) for n, v, w, s in variants),
        aliases={},
        registry="sqlite:///mlflow.db",
        model_name="nyc-taxi-duration",
    )


def entry(i: int, action: str, variant: str | None, version: str | None, *,
          position: int = 0, champion: str = "1",
          note: dict | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": i,
        "at": 1000.0 + i,
        "action": action,
        "variant": variant,
        "model_version": version,
        "actor": "duration-operate",
        "detail": "",
        "log_position": position,
        "table_after": {"champion": {"model_version": champion, "weight": 1.0, "shadow": False}},
        "note": note,
    }


RETRAINED = entry(2, "note", "challenger", "2", note={"kind": "retrain", "summary": "",
                  "data": {"outcome": "gate passed"}})  # fmt: skip


def report(
    verdict: str, labelled: int, *, shadow: bool, design: str = "always valid"
) -> dict[str, Any]:
    return {
        "variants": [
            {"variant": "champion", "shadow": False, "labelled": labelled * 9},
            {"variant": "challenger", "shadow": shadow, "labelled": labelled},
        ],
        "comparison": {
            "verdict": verdict,
            "p_value": 0.01,
            "reason": f"{verdict} because",
            "design": design,
        },
        "notes": [],
    }


def decide(table: RouterState, history: list[dict[str, Any]], answer: dict[str, Any] | None = None,
           policy: Rollout = POLICY):  # fmt: skip
    asked: list[int] = []

    def ab(since: int) -> dict[str, Any]:
        asked.append(since)
        assert answer is not None, "the report was not expected to be read"
        return answer

    return next_step("2", table, Ledger.from_history(history), policy, ab), asked


def test_a_version_that_passed_the_gate_starts_in_shadow():
    step, _ = decide(
        state(("champion", "1", 1.0, False)), [entry(1, "start", None, None), RETRAINED]
    )
    assert step.action == START
    assert step.stage is not None
    assert step.stage.name == "shadow"


def test_each_stage_reads_its_own_predictions_and_advances_on_promote():
    history = [RETRAINED, entry(3, "deploy", "challenger", "2", position=5_000)]
    step, asked = decide(
        state(("champion", "1", 1.0, False), ("challenger", "2", 0.0, True)),
        history,
        report("promote", 900, shadow=True),
    )
    assert asked == [5_000]
    assert step.action == ADVANCE
    assert step.stage is not None
    assert step.stage.name == "canary-10"
    assert step.reading is not None
    assert step.reading.labelled == 900
    history.append(entry(4, "deploy", "challenger", "2", position=9_000))
    step, asked = decide(
        state(("champion", "1", 0.9, False), ("challenger", "2", 0.1, False)),
        history,
        report("promote", 400, shadow=False),
    )
    assert asked == [9_000]
    assert step.action == ADVANCE
    assert step.stage.name == "canary-50"
    history.append(entry(5, "weight", "challenger", "2", position=12_000))
    step, asked = decide(
        state(("champion", "1", 0.5, False), ("challenger", "2", 0.5, False)),
        history,
        report("promote", 300, shadow=False),
    )
    assert asked == [12_000]
    assert step.action == PROMOTE


@pytest.mark.parametrize(
    ("verdict", "labelled", "action"),
    [
        ("keep champion", 50, ROLL_BACK),  # worse: at once, even before min_labelled
        ("promote", 150, WAIT),  # better, but fewer than min_labelled (200) rides
        ("inconclusive", 1_000, WAIT),
        ("inconclusive", 5_000, ROLL_BACK),  # max_labelled reached, undecided = roll back
    ],
)
def test_shadow_stage_decisions(verdict, labelled, action):
    step, _ = decide(
        state(("champion", "1", 1.0, False), ("challenger", "2", 0.0, True)),
        [RETRAINED, entry(3, "deploy", "challenger", "2", position=10)],
        report(verdict, labelled, shadow=True),
    )
    assert step.action == action, step.reason


def test_undecided_advance_rule_and_approval():
    stages = [
        Stage(name="canary", weight=0.2, min_labelled=100, max_labelled=1_000, undecided="advance")
    ]
    policy = Rollout(stages=stages, require_approval=True)
    table = state(("champion", "1", 0.8, False), ("challenger", "2", 0.2, False))
    history = [RETRAINED, entry(3, "deploy", "challenger", "2", position=10)]
    step, _ = decide(table, history, report("inconclusive", 1_000, shadow=False), policy)
    assert step.action == WAIT
    assert "duration-operate approve 2" in step.reason
    approval = entry(4, "note", None, "2", note={"kind": "approval", "summary": "", "data": {}})
    step, _ = decide(
        table, [*history, approval], report("inconclusive", 1_000, shadow=False), policy
    )
    assert step.action == PROMOTE
    assert "no harm shown" in step.reason


def test_a_rollout_that_ended_elsewhere_is_recorded_not_restarted():
    deployed = [RETRAINED, entry(3, "deploy", "challenger", "2", position=10)]
    promoted = [*deployed, entry(4, "promote", "challenger", "2", champion="2")]
    step, _ = decide(state(("champion", "2", 1.0, False)), promoted)
    assert (step.action, step.outcome) == (RECORD, "promoted")
    guardrail = [*deployed, entry(4, "guardrail rollback", "challenger", None)]
    step, _ = decide(state(("champion", "1", 1.0, False)), guardrail)
    assert (step.action, step.outcome) == (RECORD, "rolled back")
    assert "guardrail rollback" in step.reason


def test_someone_elses_challenger_is_left_alone_and_odd_placements_roll_back():
    step, _ = decide(
        state(("champion", "1", 0.9, False), ("challenger", "9", 0.1, False)), [RETRAINED]
    )
    assert step.action == WAIT
    assert "v9" in step.reason
    history = [RETRAINED, entry(3, "weight", "challenger", "2", position=10)]
    step, _ = decide(state(("champion", "1", 0.7, False), ("challenger", "2", 0.3, False)), history)
    assert step.action == ROLL_BACK
    assert "30%" in step.reason


def test_stage_of_and_ledger_state():
    assert stage_of(POLICY, True, 0.0) == 0
    assert stage_of(POLICY, False, 0.1) == 1
    assert stage_of(POLICY, False, 0.3) is None
    freeze = entry(5, "note", None, None, note={"kind": "freeze", "summary": "by hand", "data": {}})
    thaw = entry(6, "note", None, None, note={"kind": "unfreeze", "summary": "", "data": {}})
    assert Ledger.from_history([freeze]).frozen is not None
    assert Ledger.from_history([freeze, thaw]).frozen is None
    decided = entry(7, "note", "challenger", "2", note={"kind": "decision", "summary": "",
                    "data": {"decision": "promoted"}})  # fmt: skip
    assert Ledger.from_history([RETRAINED]).open_rollout() is not None
    assert Ledger.from_history([RETRAINED, decided]).open_rollout() is None
    history = [entry(1, "start", None, None), entry(3, "promote", "challenger", "2", champion="2")]
    assert Ledger.from_history(history).champion_since("2") == 1003.0
    assert Ledger.from_history(history).champion_since("1") is None


def test_a_fixed_horizon_verdict_is_never_acted_on():
    step, _ = decide(
        state(("champion", "1", 1.0, False), ("challenger", "2", 0.0, True)),
        [RETRAINED, entry(3, "deploy", "challenger", "2", position=10)],
        report("promote", 1_000, shadow=True, design="fixed horizon"),
    )
    assert step.action == WAIT
    assert "'fixed horizon', valid at one planned look only" in step.reason


def test_notes_the_loop_did_not_write_open_nothing_and_the_champion_is_not_rolled_out():
    spoofed = {**RETRAINED, "actor": "someone@laptop"}
    assert Ledger.from_history([spoofed]).open_rollout() is None
    # a retrain note naming the champion's own version: recorded as nothing to roll out
    champion_note = {**RETRAINED, "model_version": "1"}
    step = next_step(
        "1",
        state(("champion", "1", 1.0, False)),
        Ledger.from_history([champion_note]),
        POLICY,
        lambda since: {},
    )
    assert (step.action, step.outcome) == (RECORD, "rolled back")
    assert "champion already" in step.reason


def test_malformed_monitor_notes_are_skipped_not_fatal():
    from duration_operations.timeline import series

    def monitor(i: int, data: Any) -> dict[str, Any]:
        return entry(i, "note", None, None, note={"kind": "monitor", "summary": "", "data": data})

    window = {"first_id": 500, "psi": {"PULocationID": 1.1}}
    good = {"champion": "1", "triggers": [{"trigger": "drift", "fired": True,
            "figures": {"windows": [window]}}]}  # fmt: skip
    bad = {"champion": "1", "triggers": [{"trigger": "drift", "fired": True,
           "figures": {"windows": [{"first_id": "abc"}]}}]}  # fmt: skip
    history = [monitor(1, good), monitor(2, bad)]
    assert Ledger.from_history(history).drift_onset("1") is None  # the run ends at the bad one
    assert Ledger.from_history([monitor(1, good)]).drift_onset("1") == 500
    garbage = [monitor(1, good), monitor(2, {"triggers": "garbage"}), monitor(3, [1, 2])]
    points, _ = series(Ledger.from_history(garbage))
    assert [p.psi for p in points] == [{"PULocationID": 1.1}, {}]
