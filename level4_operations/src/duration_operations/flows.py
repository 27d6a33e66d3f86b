"""The loop as Prefect 3 flows: ``monitor`` (one pass; ``duration-operate run`` starts it every
``interval_seconds``) calls ``retrain`` when a trigger fires and the limits allow, then
``rollout``. Each step is a task; the ones that call the router or the registry retry when
those are briefly away (:data:`RETRY_DELAYS`), and are not retried on a refusal.

Prefect's API is the embedded, ephemeral one unless ``PREFECT_API_URL`` names a server; its
UI then shows every pass, its tasks, their retries and their logs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from prefect import Task, flow, task
from prefect.cache_policies import NO_CACHE

from duration_operations.operations import Operations
from duration_operations.passes import PassResult, Reading, Snapshot
from duration_operations.registry_records import RegistryUnavailableError
from duration_operations.retraining import RetrainResult
from duration_operations.rollout import RolloutStep
from duration_operations.router_gateway import RouterUnavailableError

#: Seconds between the attempts of a task whose router or registry is away.
RETRY_DELAYS = [2, 5, 10]


def _transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry only when the router or the registry was unreachable (not on a refusal)."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, RouterUnavailableError | RegistryUnavailableError)


P = ParamSpec("P")
R = TypeVar("R")


def _step(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """The task decorator of a step that reads or writes the router or the registry."""
    return task(
        name=name,
        retries=len(RETRY_DELAYS),
        retry_delay_seconds=list(RETRY_DELAYS),
        retry_condition_fn=_transient,
        cache_policy=NO_CACHE,
    )


@dataclass(frozen=True)
class Flows:
    """The three flows, bound to one :class:`Operations`."""

    monitor: Any
    retrain: Any
    rollout: Any


def build_flows(ops: Operations) -> Flows:
    """Flows and tasks whose steps are ``ops``'s methods (Prefect tasks hold no state of
    their own: the loop's state is the router's)."""

    @_step("read-router")
    def read_router() -> Snapshot:
        return ops.snapshot()

    @_step("read-triggers")
    def read_triggers(snap: Snapshot) -> Reading:
        return ops.read_triggers(snap)

    # Not retried: a retrain is expensive and counts against the limits; the next pass
    # decides again.
    @task(name="train-and-gate", cache_policy=NO_CACHE)
    def train_and_gate(snap: Snapshot, reading: Reading) -> RetrainResult:
        return ops.retrain(snap, reading)

    @_step("rollout-step")
    def rollout_step(snap: Snapshot) -> RolloutStep | None:
        return ops.rollout(snap)

    @_step("record-pass")
    def record(result: PassResult) -> None:
        ops.record_pass(result)

    @flow(name="retrain", validate_parameters=False)
    def retrain_flow(snap: Snapshot, reading: Reading) -> RetrainResult:
        """Production data -> level 2's pipeline -> the gate."""
        return train_and_gate(snap, reading)

    @flow(name="rollout", validate_parameters=False)
    def rollout_flow(snap: Snapshot) -> RolloutStep | None:
        """The open rollout's next step (re-reading the router first)."""
        return rollout_step(read_router())

    @flow(name="monitor")
    def monitor_flow() -> dict[str, Any]:
        """One pass: read the router and the triggers, retrain if asked, step the rollout."""
        snap = read_router()
        reading = read_triggers(snap)
        result = ops.finish_pass(
            snap,
            reading,
            retrain_step=lambda s, r: retrain_flow(s, r),
            rollout_step=lambda s: rollout_flow(s),
            record=record,
        )
        return result.to_dict()

    return Flows(monitor=monitor_flow, retrain=retrain_flow, rollout=rollout_flow)
