"""The history of routing-table changes: its actions, and what is read back from it.

Entries are written by :meth:`DeploymentManager._commit
<duration_deployment.manager.DeploymentManager>` to the prediction log's ``events`` table (one
row per change: action, actor, the table and aliases after it). This module reads them: where
the current A/B experiment began, whether a guardrail removed a version, which earlier table a
rollback after a restart rebuilds.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from duration_deployment.routing import CHALLENGER, CHAMPION


class Action(StrEnum):
    """What a history entry records (stored as its value)."""

    START = "start"
    DEPLOY = "deploy"
    WEIGHT = "weight"
    REMOVE = "remove"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    GUARDRAIL_ROLLBACK = "guardrail rollback"
    #: A note from an operator or an automated loop (level 4's decisions): the table is
    #: unchanged; ``detail`` holds ``{"kind", "summary", "data"}`` as JSON.
    NOTE = "note"


#: The actions that change the routing table (every action but a note).
TABLE_ACTIONS = tuple(a.value for a in Action if a is not Action.NOTE)


#: Actions after which the challenger slot holds a version chosen by someone (or emptied).
_CHALLENGER_DECISIONS = (Action.DEPLOY, Action.PROMOTE, Action.REMOVE)


def _versions(event: dict[str, Any]) -> tuple[Any, Any]:
    table = event["table_after"]
    return (
        table.get(CHAMPION, {}).get("model_version"),
        table.get(CHALLENGER, {}).get("model_version"),
    )


def experiment_start(events: Sequence[dict[str, Any]]) -> tuple[int, dict[str, Any] | None]:
    """Where the current A/B experiment began.

    It is the oldest of the latest run of entries that all have today's champion and
    challenger versions: weight changes do not start a new experiment; a new version of either
    does, and so do a promote and its rollback.

    Args:
        events: History entries, oldest first (``PredictionLog.history``).

    Returns:
        (log position: predictions with a higher id belong to the experiment, its first
        entry), or ``(0, None)`` when there is no history.
    """
    if not events:
        return 0, None
    current = _versions(events[-1])
    first = events[-1]
    for event in reversed(events):
        if _versions(event) != current:
            break
        first = event
    return int(first["log_position"]), first


def tripped_before(events: Sequence[dict[str, Any]], version: str) -> bool:
    """Whether the newest entry about the challenger is a guardrail rollback of ``version``
    (and not a later deployment, promote or removal)."""
    for event in reversed(events):
        if event["variant"] != CHALLENGER:
            continue
        if event["action"] == Action.GUARDRAIL_ROLLBACK:
            return bool(event["previous_version"] == version)
        if event["action"] in _CHALLENGER_DECISIONS:
            return False
    return False


def last_different_table(
    events: Sequence[dict[str, Any]], current: dict[str, Any]
) -> dict[str, Any] | None:
    """The newest entry whose table differs from ``current`` (a table's ``summary()``) and
    is not empty: what a rollback right after a restart restores."""
    for event in reversed(events):
        if event["table_after"] != current:
            return event if event["table_after"] else None
    return None
