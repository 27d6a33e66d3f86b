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
    their own: the loop's state is the router's).

    No flow takes a parameter: Prefect stores a flow run's parameters in its API (and refuses
    more than 512 KiB), and a pass's snapshot holds hundreds of notes. What a subflow needs
    reaches it through ``current`` instead; a step that is retried reads the router again.
    """
    current: dict[str, Any] = {}

    @_step("read-router")
    def read_router() -> Snapshot:
        return ops.snapshot()

    @_step("read-triggers")
    def read_triggers() -> Reading:
        return ops.read_triggers(current["snapshot"])

    # Not retried: a retrain is expensive and counts against the limits; the next pass
    # decides again.
    @task(name="train-and-gate", cache_policy=NO_CACHE)
    def train_and_gate() -> RetrainResult:
        return ops.retrain(current["snapshot"], current["reading"])

    @_step("rollout-step")
    def rollout_step() -> RolloutStep | None:
        return ops.rollout(ops.snapshot())  # a retry decides on the table as it is then

    @_step("record-pass")
    def record() -> None:
        ops.record_pass(current["result"])

    @flow(name="retrain")
    def retrain_flow() -> RetrainResult:
        """Production data -> level 2's pipeline -> the gate."""
        return train_and_gate()

    @flow(name="rollout")
    def rollout_flow() -> RolloutStep | None:
        """The open rollout's next step, on the router's table as it is now."""
        return rollout_step()

    def retrain(snap: Snapshot, reading: Reading) -> RetrainResult:
        current.update(snapshot=snap, reading=reading)
        return retrain_flow()

    def record_result(result: PassResult) -> None:
        current["result"] = result
        record()

    @flow(name="monitor")
    def monitor_flow() -> dict[str, Any]:
        """One pass: read the router and the triggers, retrain if asked, step the rollout."""
        current.clear()
        current["snapshot"] = read_router()
        reading = read_triggers()
        result = ops.finish_pass(
            current["snapshot"],
            reading,
            retrain_step=retrain,
            rollout_step=lambda _snap: rollout_flow(),
            record=record_result,
        )
        return result.to_dict()

    return Flows(monitor=monitor_flow, retrain=retrain_flow, rollout=rollout_flow)
