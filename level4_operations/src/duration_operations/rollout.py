"""The rollout of a retrained version, one step per pass: shadow, canary stages, promote.

:func:`next_step` is a pure decision on what the router's table, the history and the A/B
report of the current stage say; the loop carries it out through the router's control API.
The stage a challenger is in is read from the table (shadow, or its live weight), the stage's
start from the history (the table change that placed it), so a restarted loop asks the same
question again instead of starting over.

At each stage, level 3's always-valid A/B test (the mixture SPRT, ``GET /ab/report?since=``,
over the stage's predictions only) decides:

- ``keep champion`` (the challenger is worse): roll back at once;
- fewer than ``min_labelled`` labelled challenger rides: wait;
- ``promote`` (better): the next stage, or the promotion after the last one (after an
  ``approval`` note when the policy asks for one);
- still undecided at ``max_labelled``: the stage's ``undecided`` rule.

Because the test is valid at every look, acting on the first decision keeps the chance of
promoting a version that is no better at alpha; a router set to the fixed-horizon design is
waited on, never acted on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from duration_deployment.analysis import ALWAYS_VALID
from duration_operations.ledger import PROMOTED, ROLLED_BACK, Ledger
from duration_operations.policy import Rollout, Stage
from duration_operations.router_gateway import CHALLENGER, CHAMPION, RouterState

START, ADVANCE, PROMOTE, ROLL_BACK, WAIT, RECORD = (
    "start",
    "advance",
    "promote",
    "roll back",
    "wait",
    "record",
)


@dataclass(frozen=True)
class StageReading:
    """The A/B test of one stage at one look.

    Attributes:
        stage: The stage's name.
        since: Log position the stage started after.
        labelled: Labelled challenger rides in the stage (pairs, for a shadow).
        verdict: ``promote``, ``keep champion`` or ``inconclusive`` (None: no comparison).
        p_value: The always-valid p-value (None before it can be computed).
        difference / ci_low / ci_high: Challenger minus champion MSE and its confidence
            sequence, min^2.
        method / design: What level 3 computed.
        reason: Level 3's sentence.
    """

    stage: str
    since: int
    labelled: int
    verdict: str | None
    p_value: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    method: str | None
    design: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RolloutStep:
    """What to do for ``version`` now.

    Attributes:
        version: The retrained version being rolled out.
        action: :data:`START`, :data:`ADVANCE`, :data:`PROMOTE`, :data:`ROLL_BACK`,
            :data:`WAIT` or :data:`RECORD` (the rollout already ended, by someone else's
            call or before a restart: write the decision down).
        reason: One sentence.
        stage: The stage to enter (START, ADVANCE), else None.
        reading: The current stage's test, when one ran.
        outcome: For RECORD: :data:`~duration_operations.ledger.PROMOTED` or
            :data:`~duration_operations.ledger.ROLLED_BACK`.
    """

    version: str
    action: str
    reason: str
    stage: Stage | None = None
    reading: StageReading | None = None
    outcome: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "action": self.action,
            "reason": self.reason,
            "stage": None if self.stage is None else self.stage.name,
            "reading": None if self.reading is None else self.reading.to_dict(),
            "outcome": self.outcome,
        }


def stage_of(policy: Rollout, shadow: bool, weight: float) -> int | None:
    """Index of the stage a challenger deployed so is in, None if none matches."""
    for i, stage in enumerate(policy.stages):
        if stage.shadow == shadow and (shadow or abs(stage.weight - weight) < 1e-6):
            return i
    return None


def read_stage(report: dict[str, Any], stage: Stage, since: int) -> StageReading:
    """The parts of an ``/ab/report`` answer a stage decision uses."""
    comparison = report.get("comparison") or {}
    labelled = 0
    for v in report.get("variants", []):
        if v["variant"] == CHALLENGER and bool(v["shadow"]) == stage.shadow:
            labelled = int(v["labelled"])
    return StageReading(
        stage=stage.name,
        since=since,
        labelled=labelled,
        verdict=comparison.get("verdict"),
        p_value=comparison.get("p_value"),
        difference=comparison.get("difference"),
        ci_low=comparison.get("ci_low"),
        ci_high=comparison.get("ci_high"),
        method=comparison.get("method"),
        design=comparison.get("design"),
        reason=str(
            comparison.get("reason") or "; ".join(report.get("notes", [])) or "no comparison"
        ),
    )


def next_step(
    version: str,
    state: RouterState,
    ledger: Ledger,
    policy: Rollout,
    ab_report: Callable[[int], dict[str, Any]],
) -> RolloutStep:
    """See the module docstring. ``ab_report(since)`` fetches the report of one stage."""
    challenger, champion = state.get(CHALLENGER), state.get(CHAMPION)
    placed = ledger.placed(version)
    if challenger is None or challenger.version != version:
        if placed is None and champion is not None and champion.version == version:
            return RolloutStep(
                version, RECORD, "it is the champion already: nothing to roll out",
                outcome=ROLLED_BACK,
            )  # fmt: skip
        if placed is None:
            if challenger is not None:
                return RolloutStep(
                    version,
                    WAIT,
                    f"challenger v{challenger.version} (not this rollout's) is deployed: "
                    "waiting until it is promoted or removed",
                )
            first = policy.stages[0]
            return RolloutStep(version, START, f"the gate passed: stage {first.name}", first)
        if champion is not None and champion.version == version:
            return RolloutStep(version, RECORD, "it is the champion", outcome=PROMOTED)
        after = [e for e in ledger.table if e["id"] > placed["id"]]
        why = next(
            (
                f"{e['action']} by {e['actor']}: {e['detail']}"
                for e in after
                if e.get("variant") == CHALLENGER or e["action"] in ("promote", "rollback")
            ),
            "it is no longer deployed",
        )
        return RolloutStep(version, RECORD, f"removed ({why})", outcome=ROLLED_BACK)
    index = stage_of(policy, challenger.shadow, challenger.weight)
    if index is None or placed is None:
        placement = "shadow" if challenger.shadow else f"{challenger.weight:.0%}"
        return RolloutStep(
            version, ROLL_BACK, f"its placement ({placement}) matches no stage of the policy"
        )
    stage = policy.stages[index]
    since = int(placed["log_position"])
    reading = read_stage(ab_report(since), stage, since)
    if reading.verdict is not None and reading.design != ALWAYS_VALID:
        # A fixed-horizon verdict read at every pass decides far more often than alpha says
        # (25% of A/A experiments at 20 looks): the loop acts on the always-valid test only.
        return RolloutStep(
            version,
            WAIT,
            f"{stage.name}: the router's A/B test is {reading.design!r}, valid at one planned "
            f"look only; the loop acts on {ALWAYS_VALID!r} verdicts (DURATION_ROUTER_AB_DESIGN)",
            reading=reading,
        )
    if reading.verdict == "keep champion":
        return RolloutStep(version, ROLL_BACK, f"{stage.name}: {reading.reason}", reading=reading)
    if reading.labelled < stage.min_labelled:
        return RolloutStep(
            version,
            WAIT,
            f"{stage.name}: {reading.labelled:,} of {stage.min_labelled:,} labelled rides",
            reading=reading,
        )
    undecided_end = reading.verdict != "promote" and reading.labelled >= stage.max_labelled
    if undecided_end and stage.undecided == "roll back":
        return RolloutStep(
            version,
            ROLL_BACK,
            f"{stage.name}: no decision after {reading.labelled:,} labelled rides "
            f"(max {stage.max_labelled:,}): {reading.reason}",
            reading=reading,
        )
    if reading.verdict != "promote" and not undecided_end:
        return RolloutStep(version, WAIT, f"{stage.name}: {reading.reason}", reading=reading)
    why = (
        f"{stage.name}: {reading.reason}"
        if not undecided_end
        else f"{stage.name}: no harm shown after {reading.labelled:,} labelled rides"
    )
    if index + 1 < len(policy.stages):
        return RolloutStep(version, ADVANCE, why, policy.stages[index + 1], reading)
    if policy.require_approval and ledger.approved(version) is None:
        return RolloutStep(
            version,
            WAIT,
            f"{why}; the promotion waits for `duration-operate approve {version}`",
            reading=reading,
        )
    return RolloutStep(version, PROMOTE, why, reading=reading)
