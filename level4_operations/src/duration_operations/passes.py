"""What one pass of the loop sees and does: the router's state at the start of a step
(:class:`Snapshot`), the triggers' readings (:class:`Reading`) and the pass's outcome
(:class:`PassResult`, the data of its ``monitor`` note)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from duration_operations.ledger import Ledger
from duration_operations.retraining import RetrainResult
from duration_operations.rollout import RolloutStep
from duration_operations.router_gateway import CHAMPION, RouterState
from duration_operations.triggers import TriggerResult


class NoChampionError(Exception):
    """The router serves no champion: there is nothing to monitor."""


@dataclass(frozen=True)
class Snapshot:
    """The router's table and history at the start of a step."""

    state: RouterState
    ledger: Ledger

    @property
    def champion_version(self) -> str:
        champion = self.state.get(CHAMPION)
        if champion is None:
            raise NoChampionError("the router serves no champion: deploy one (level 3) first")
        return champion.version


@dataclass(frozen=True)
class Reading:
    """The triggers at one pass."""

    champion: str
    triggers: list[TriggerResult]

    @property
    def fired(self) -> list[TriggerResult]:
        return [t for t in self.triggers if t.fired]


@dataclass
class PassResult:
    """What one pass saw and did (the ``monitor`` note's data)."""

    champion: str
    frozen: bool
    triggers: list[TriggerResult]
    retrain: RetrainResult | None = None
    retrain_skipped: str | None = None
    rollout: RolloutStep | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion": self.champion,
            "frozen": self.frozen,
            "triggers": [t.to_dict() for t in self.triggers],
            "retrain": None if self.retrain is None else self.retrain.to_dict(),
            "retrain_skipped": self.retrain_skipped,
            "rollout": None if self.rollout is None else self.rollout.to_dict(),
        }

    def summary(self) -> str:
        fired = [t.trigger for t in self.triggers if t.fired]
        parts = [f"champion v{self.champion}", "fired: " + (", ".join(fired) or "none")]
        if self.frozen:
            parts.append("frozen")
        if self.retrain is not None:
            parts.append(f"retrain: {self.retrain.outcome}")
        elif self.retrain_skipped:
            parts.append(f"no retrain: {self.retrain_skipped}")
        if self.rollout is not None:
            parts.append(f"rollout v{self.rollout.version}: {self.rollout.action}")
        return "; ".join(parts)
