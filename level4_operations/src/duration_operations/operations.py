"""The steps of one pass of the loop, as plain methods (``flows.py`` runs them as Prefect
tasks): read the router, read the triggers, maybe retrain, take the rollout's next step, and
write down every reading and decision (router history notes, MLflow version tags, metrics).

Every change goes through :class:`~duration_operations.router_gateway.RouterGateway`. A pass
keeps no state of its own between calls: what it needs is read back from the router's table
and history (:class:`~duration_operations.ledger.Ledger`) each time.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from duration_deployment.history import TABLE_ACTIONS
from duration_operations import ledger as kinds
from duration_operations.ledger import Ledger
from duration_operations.metrics import OperationsMetrics
from duration_operations.passes import PassResult, Reading, Snapshot
from duration_operations.policy import Policy
from duration_operations.registry_records import (
    RegistryUnavailableError,
    VersionFacts,
    tag_version,
    version_facts,
)
from duration_operations.retraining import (
    GATE_PASSED,
    TOO_FEW_RIDES,
    RetrainResult,
    drift_onset,
    labelled_rides,
    retrain,
)
from duration_operations.rollout import (
    ADVANCE,
    PROMOTE,
    RECORD,
    ROLL_BACK,
    START,
    WAIT,
    RolloutStep,
    next_step,
)
from duration_operations.router_gateway import (
    CHAMPION,
    RouterGateway,
    RouterRefusedError,
)
from duration_operations.triggers import (
    champion_rows,
    drift_trigger,
    new_month_trigger,
    performance_trigger,
    psi_values,
    schedule_trigger,
)

logger = logging.getLogger(__name__)
DAY_SECONDS = 86_400
#: Monitor notes a pass reads back (the drift onset walks them): over 8 hours at one a minute.
MONITOR_NOTES = 500


class Operations:
    """The loop's steps against one router and one registry.

    Args:
        gateway: The router's API.
        policy: The operations policy.
        tracking_uri: The MLflow tracking/registry URI; None: the registry the router reports
            (read at the first snapshot, so the loop may start before the router).
        workdir: Where retraining data files are written.
        metrics: Where the readings are counted.
        clock: Unix time, seconds (tests pass their own).
    """

    def __init__(
        self,
        gateway: RouterGateway,
        policy: Policy,
        *,
        tracking_uri: str | None,
        workdir: Path,
        metrics: OperationsMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway = gateway
        self.policy = policy
        self._tracking_uri = tracking_uri
        self.workdir = workdir
        self.metrics = metrics or OperationsMetrics()
        self.clock = clock
        self._facts: dict[str, VersionFacts] = {}

    # -- reading --------------------------------------------------------------------------------

    @property
    def tracking_uri(self) -> str:
        if self._tracking_uri is None:
            self._tracking_uri = self.gateway.state().registry
        return self._tracking_uri

    def snapshot(self, monitor_notes: int = 0) -> Snapshot:
        """The table, and the history a pass reads: every table change and every note but the
        monitor passes', and the latest ``monitor_notes`` (default :data:`MONITOR_NOTES`) of
        those (one a pass: they would crowd out the rest)."""
        state = self.gateway.state()
        if self._tracking_uri is None:
            self._tracking_uri = state.registry
        others = tuple(k for k in kinds.NOTE_KINDS if k != kinds.MONITOR)
        entries = self.gateway.history(kinds=others, actions=TABLE_ACTIONS)
        limit = monitor_notes or MONITOR_NOTES
        entries += self.gateway.history(kinds=(kinds.MONITOR,), limit=limit)
        return Snapshot(state, Ledger.from_history(sorted(entries, key=lambda e: e["id"])))

    def facts(self, model_name: str, version: str) -> VersionFacts:
        if version not in self._facts:
            self._facts[version] = version_facts(self.tracking_uri, model_name, version)
        return self._facts[version]

    def read_triggers(self, snap: Snapshot) -> Reading:
        """Every trigger's reading for the current champion."""
        version = snap.champion_version
        facts = self.facts(snap.state.model_name, version)
        triggers = self.policy.triggers
        wanted = triggers.drift.window * triggers.drift.windows
        live = self.gateway.predictions(last=wanted, variant=CHAMPION, shadow=False)
        labelled = self.gateway.predictions(
            last=triggers.performance.window, variant=CHAMPION, shadow=False, labelled=True
        )
        results = [
            drift_trigger(champion_rows(live, version), facts, triggers.drift),
            performance_trigger(champion_rows(labelled, version), facts, triggers.performance),
            schedule_trigger(snap.ledger.champion_since(version), self.clock(), triggers.schedule),
            new_month_trigger(facts, triggers.new_month),
        ]
        m = self.metrics
        m.val_rmse.set(facts.val_rmse * 60)
        for t in results:
            m.trigger_readings.labels(trigger=t.trigger, fired=str(t.fired).lower()).inc()
            if t.trigger == "drift" and "windows" in t.figures:
                for name, value in psi_values(t.figures["windows"]).items():
                    m.drift_psi.labels(feature=name).set(value)
            if t.trigger == "performance" and "live_rmse" in t.figures:
                m.live_rmse.set(t.figures["live_rmse"] * 60)
        return Reading(version, results)

    # -- deciding -------------------------------------------------------------------------------

    def frozen(self, snap: Snapshot) -> str | None:
        """Why the loop is frozen, or None."""
        if self.policy.frozen:
            return "frozen by the policy file"
        note = snap.ledger.frozen
        return None if note is None else f"frozen by {note.actor}: {note.summary}"

    def retrain_blocked(self, snap: Snapshot) -> str | None:
        """Why no retrain may start now (None: it may)."""
        if (why := self.frozen(snap)) is not None:
            return why
        if (note := snap.ledger.open_rollout()) is not None:
            return f"v{note.model_version}'s rollout is open"
        if (challenger := snap.state.get("challenger")) is not None:
            return f"challenger v{challenger.version} is deployed"
        now, limits = self.clock(), self.policy.limits
        recent = snap.ledger.retrain_starts(now - DAY_SECONDS)
        if recent and now - recent[-1].at < limits.cooldown_minutes * 60:
            left = limits.cooldown_minutes - (now - recent[-1].at) / 60
            return f"cool-down: {left:.0f} of {limits.cooldown_minutes:g} minutes left"
        if len(recent) >= limits.max_retrains_per_day:
            return f"{len(recent)} retrains in 24 h, the most the policy allows"
        return None

    # -- acting ---------------------------------------------------------------------------------

    def retrain(self, snap: Snapshot, reading: Reading) -> RetrainResult:
        """Retrain on the latest labelled production rides; record it either way."""
        data = self.policy.retraining
        remembered = snap.ledger.drift_onset(reading.champion)
        after = drift_onset(reading.fired, remembered) if data.since_drift_onset else 0
        frame = self.gateway.predictions(
            last=data.rides * 2, shadow=False, labelled=True, after_id=after
        )
        rides = labelled_rides(frame)
        if len(rides) < data.min_rides:  # not a retrain: nothing started, no limit used
            since = f" after log position {after:,}" if after else ""
            return RetrainResult(
                TOO_FEW_RIDES,
                f"{len(rides):,} labelled production rides{since}, the policy needs "
                f"{data.min_rides:,}",
            )
        why = ", ".join(f"{t.trigger} ({t.reason})" for t in reading.fired)
        self.gateway.note(
            kinds.RETRAIN_STARTED,
            f"retrain on {len(rides):,} labelled production rides: {why}",
            {
                "triggers": [t.to_dict() for t in reading.fired],
                "rides": len(rides),
                "after_id": after,
            },
        )
        folder = self.workdir / f"retrain-{int(self.clock())}"
        result = retrain(
            rides,
            data_policy=data,
            gates=self.policy.gates,
            tracking_uri=self.tracking_uri,
            model_name=snap.state.model_name,
            folder=folder,
        )
        self.metrics.retrains.labels(outcome=result.outcome).inc()
        record = result.to_dict() | {"triggers": [t.trigger for t in reading.fired]}
        self.gateway.note(
            kinds.RETRAIN, result.reason, record, model_version=result.version, variant="challenger"
        )
        if result.version is not None:
            self._tag(
                snap.state.model_name,
                result.version,
                {
                    "trigger": why,
                    "data": record["data"],
                    "gate": {
                        k: record[k]
                        for k in ("outcome", "challenger_rmse", "champion_rmse", "improvement")
                    },
                    "champion_at_retrain": reading.champion,
                },
            )
        return result

    def rollout(self, snap: Snapshot) -> RolloutStep | None:
        """Decide and take the open rollout's next step (None: no rollout is open)."""
        note = snap.ledger.open_rollout()
        if note is None or note.model_version is None:
            self.metrics.stage.set(-1)
            return None
        version = note.model_version
        promotion_policy = self.policy.rollout
        step = next_step(version, snap.state, snap.ledger, promotion_policy, self.gateway.ab_report)
        frozen = self.frozen(snap)
        if frozen is not None and step.action in (START, ADVANCE, PROMOTE, ROLL_BACK):
            step = RolloutStep(
                version, WAIT, f"{frozen} (next: {step.action})", reading=step.reading
            )
        self._carry_out(snap, step)
        self.metrics.rollout_actions.labels(action=step.action).inc()
        return step

    def _carry_out(self, snap: Snapshot, step: RolloutStep) -> None:
        try:
            self._change(snap, step)
        except RouterRefusedError as exc:
            # The router's own checks (smoke test, sha256, the table's rules) refused the
            # stage: the rollout ends here rather than asking again at every pass.
            if snap.state.get("challenger") is not None and step.action != ROLL_BACK:
                with contextlib.suppress(RouterRefusedError):  # already gone
                    self.gateway.remove_challenger()
            why = f"the router refused to {step.action}: {exc}"
            refused = RolloutStep(step.version, ROLL_BACK, why, reading=step.reading)
            reading = None if step.reading is None else step.reading.to_dict()
            self._decide(snap.state.model_name, refused, kinds.ROLLED_BACK, reading)

    def _change(self, snap: Snapshot, step: RolloutStep) -> None:
        gw, name, version = self.gateway, snap.state.model_name, step.version
        reading = None if step.reading is None else step.reading.to_dict()
        if step.action in (START, ADVANCE) and step.stage is not None:
            stage = step.stage
            challenger = snap.state.get("challenger")
            if challenger is not None and not challenger.shadow and not stage.shadow:
                gw.set_weight(stage.weight)
            else:
                gw.deploy(name, version, shadow=stage.shadow, weight=stage.weight)
            gw.note(
                kinds.STAGE,
                f"v{version} -> {stage.name}: {step.reason}",
                {
                    "stage": stage.name,
                    "shadow": stage.shadow,
                    "weight": stage.weight,
                    "previous": reading,
                },
                model_version=version,
                variant="challenger",
            )
            self.metrics.stage.set([s.name for s in self.policy.rollout.stages].index(stage.name))
            if reading is not None:
                self._tag(name, version, {f"stage.{reading['stage']}": reading})
            return
        if step.action == PROMOTE:
            gw.promote()
            self._decide(name, step, kinds.PROMOTED, reading)
        elif step.action == ROLL_BACK:
            gw.remove_challenger()
            self._decide(name, step, kinds.ROLLED_BACK, reading)
        elif step.action == RECORD and step.outcome is not None:
            self._decide(name, step, step.outcome, reading)

    def _decide(
        self, name: str, step: RolloutStep, outcome: str, reading: dict[str, Any] | None
    ) -> None:
        (self.metrics.promotions if outcome == kinds.PROMOTED else self.metrics.rollbacks).inc()
        self.metrics.stage.set(-1)
        self.gateway.note(
            kinds.DECISION,
            f"v{step.version} {outcome}: {step.reason}",
            {"decision": outcome, "reading": reading, "reason": step.reason},
            model_version=step.version,
            variant="challenger",
        )
        tags: dict[str, Any] = {"decision": f"{outcome}: {step.reason}"}
        if reading is not None:  # the last stage's test, like the others' at their advance
            tags[f"stage.{reading['stage']}"] = reading
        self._tag(name, step.version, tags)

    def _tag(self, name: str, version: str, tags: dict[str, Any]) -> None:
        """Tag the version after the router has made the change and the history has it: the
        tags are a copy of the record, so a registry that is away loses a copy (logged,
        counted), never the change or its record."""
        try:
            tag_version(self.tracking_uri, name, version, tags)
        except RegistryUnavailableError as exc:
            self.metrics.tag_failures.inc()
            logger.warning("v%s: tags %s not written: %s", version, sorted(tags), exc)

    def record_pass(self, result: PassResult) -> None:
        self.gateway.note(kinds.MONITOR, result.summary(), result.to_dict())
        self.metrics.passes.labels(outcome="frozen" if result.frozen else "ok").inc()
        self.metrics.frozen.set(1 if result.frozen else 0)
        self.metrics.last_pass.set(self.clock())

    def run_pass(self) -> PassResult:
        """One pass without an orchestrator (``flows.py`` runs the same steps as tasks)."""
        snap = self.snapshot()
        reading = self.read_triggers(snap)
        return self.finish_pass(snap, reading, retrain_step=self.retrain, rollout_step=self.rollout)

    def finish_pass(
        self,
        snap: Snapshot,
        reading: Reading,
        *,
        retrain_step: Callable[[Snapshot, Reading], RetrainResult],
        rollout_step: Callable[[Snapshot], RolloutStep | None],
        record: Callable[[PassResult], None] | None = None,
    ) -> PassResult:
        """After the readings: retrain if a trigger fired and the limits allow, then the
        rollout's step; record the pass. The steps are passed in so an orchestrator can run
        them as its own tasks."""
        result = PassResult(reading.champion, self.frozen(snap) is not None, reading.triggers)
        if reading.fired:
            result.retrain_skipped = self.retrain_blocked(snap)
            if result.retrain_skipped is None:
                result.retrain = retrain_step(snap, reading)
                if result.retrain.outcome == GATE_PASSED:
                    snap = self.snapshot()
        result.rollout = rollout_step(snap)
        (record or self.record_pass)(result)
        return result
