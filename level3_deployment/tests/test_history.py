"""The history's readers and the start-up plan: pure functions of history entries."""

from __future__ import annotations

from typing import Any

import pytest

from duration_deployment.history import (
    Action,
    experiment_start,
    last_different_table,
    tripped_before,
)
from duration_deployment.restore import StartPlan, Wanted, plan_start


def entry(
    position: int,
    action: Action,
    table: dict[str, tuple[str, float, bool]],
    *,
    variant: str | None = None,
    previous: str | None = None,
) -> dict[str, Any]:
    return {
        "log_position": position,
        "action": str(action),
        "variant": variant,
        "previous_version": previous,
        "table_after": {
            name: {"model_version": v, "weight": w, "shadow": s}
            for name, (v, w, s) in table.items()
        },
    }


A = {"champion": ("1", 0.9, False), "challenger": ("2", 0.1, False)}
A_HALF = {"champion": ("1", 0.5, False), "challenger": ("2", 0.5, False)}
B = {"champion": ("2", 1.0, False)}


def test_the_experiment_starts_where_the_versions_last_changed() -> None:
    assert experiment_start([]) == (0, None)
    events = [
        entry(0, Action.START, {"champion": ("1", 1.0, False)}),
        entry(10, Action.DEPLOY, A),
        entry(50, Action.WEIGHT, A_HALF),  # a weight change goes on with the same experiment
    ]
    assert experiment_start(events) == (10, events[1])
    events += [entry(90, Action.PROMOTE, B), entry(95, Action.ROLLBACK, A_HALF)]
    # A promote and its rollback start a new experiment, even with the old versions.
    assert experiment_start(events) == (95, events[4])


def test_a_guardrail_rollback_counts_until_a_later_decision_about_the_challenger() -> None:
    tripped = entry(5, Action.GUARDRAIL_ROLLBACK, {}, variant="challenger", previous="2")
    assert tripped_before([tripped], "2") is True
    assert tripped_before([tripped], "3") is False
    redeployed = entry(6, Action.DEPLOY, A, variant="challenger")
    assert tripped_before([tripped, redeployed], "2") is False
    weight = entry(7, Action.WEIGHT, A_HALF, variant="champion")
    assert tripped_before([tripped, weight], "2") is True  # not about the challenger
    assert tripped_before([], "2") is False


def test_the_last_different_table_skips_equal_and_empty_ones() -> None:
    events = [entry(0, Action.START, A), entry(1, Action.DEPLOY, {}), entry(2, Action.WEIGHT, B)]
    current = events[-1]["table_after"]
    assert last_different_table(events, current) is None  # the newest different one is empty
    events.append(entry(3, Action.WEIGHT, A_HALF))
    assert last_different_table(events, events[-1]["table_after"]) is events[2]


def test_action_values_are_what_the_history_stores() -> None:
    assert [str(a) for a in Action] == [
        "start", "deploy", "weight", "remove", "promote", "rollback", "guardrail rollback", "note"
    ]  # fmt: skip
    assert Action.GUARDRAIL_ROLLBACK == "guardrail rollback"


@pytest.mark.parametrize(
    ("champion", "challenger", "last", "expected"),
    [
        # No history: the champion with 90%, the challenger with 10%.
        ("1", "2", None, StartPlan((Wanted("champion", "1", 0.9), Wanted("challenger", "2", 0.1)),
                                   restored=False)),
        # Level 2 leaves both aliases on a first version: no challenger.
        ("1", "1", None, StartPlan((Wanted("champion", "1", 1.0),), restored=False)),
        # The aliases still name the last table's versions: restored whole, shadow included.
        ("1", "2",
         entry(0, Action.WEIGHT, {**A_HALF, "shadow-x": ("3", 0.0, True)}),
         StartPlan((Wanted("champion", "1", 0.5), Wanted("challenger", "2", 0.5),
                    Wanted("shadow-x", "3", 0.0, True)), restored=True)),
        # The challenger changed since: defaults, and the shadow is not restored.
        ("1", "4",
         entry(0, Action.WEIGHT, {**A_HALF, "shadow-x": ("3", 0.0, True)}),
         StartPlan((Wanted("champion", "1", 0.9), Wanted("challenger", "4", 0.1)),
                   restored=False, dropped=("shadow-x",))),
        # A shadow challenger is no live challenger: a table with one does not match.
        ("1", "2", entry(0, Action.DEPLOY, {"champion": ("1", 1.0, False),
                                            "challenger": ("2", 0.0, True)}),
         StartPlan((Wanted("champion", "1", 0.9), Wanted("challenger", "2", 0.1)),
                   restored=False)),
        # v2 deployed as champion while it was the challenger: both aliases name v2, and the
        # saved table (both slots v2, another variant) is restored whole.
        ("2", "2", entry(0, Action.DEPLOY, {"champion": ("2", 0.5, False),
                                            "challenger": ("2", 0.3, False),
                                            "w1": ("1", 0.2, False)}),
         StartPlan((Wanted("champion", "2", 0.5), Wanted("challenger", "2", 0.3),
                    Wanted("w1", "1", 0.2)), restored=True)),
    ],
    ids=["defaults", "same-version", "restored", "changed", "shadow-challenger",
         "both-aliases-on-one-version"],
)  # fmt: skip
def test_start_plan(
    champion: str, challenger: str, last: dict[str, Any] | None, expected: StartPlan
) -> None:
    plan = plan_start(champion, challenger, last, challenger_weight=0.1)
    assert plan.restored == expected.restored
    assert plan.dropped == expected.dropped
    assert [(w.name, w.version, pytest.approx(w.weight), w.shadow) for w in plan.variants] == [
        (w.name, w.version, w.weight, w.shadow) for w in expected.variants
    ]
