"""What the loop is doing now, read from the router (``duration-operate status``)."""

from __future__ import annotations

import time
from typing import Any

from duration_operations import ledger as kinds
from duration_operations.operations import DAY_SECONDS, Operations
from duration_operations.passes import Snapshot
from duration_operations.rollout import stage_of


def status(ops: Operations, snap: Snapshot) -> dict[str, Any]:
    """A JSON-able dict: router, registry, champion, the open rollout and its stage, frozen
    (why, or None), retrains in 24 h, the cool-down left (minutes), the last pass's summary,
    the last decisions."""
    state, ledger = snap.state, snap.ledger
    champion = state.get("champion")
    challenger = state.get("challenger")
    open_note = ledger.open_rollout()
    rollout: dict[str, Any] | None = None
    text = "no rollout open"
    if open_note is not None:
        version = open_note.model_version
        stage = None
        if challenger is not None and challenger.version == version:
            index = stage_of(ops.policy.rollout, challenger.shadow, challenger.weight)
            stage = None if index is None else ops.policy.rollout.stages[index].name
        rollout = {"version": version, "stage": stage}
        text = f"rollout of v{version}: " + (stage or "not deployed yet")
    elif challenger is not None:
        text = f"challenger v{challenger.version} deployed (not by the loop)"
    now = ops.clock()
    starts = ledger.retrain_starts(now - DAY_SECONDS)
    cooldown = 0.0
    if starts:
        cooldown = max(0.0, ops.policy.limits.cooldown_minutes - (now - starts[-1].at) / 60)
    passes = ledger.of(kinds.MONITOR)
    decisions = ledger.of(kinds.DECISION)[-5:]
    return {
        "router": ops.gateway.url,
        "registry": state.registry,
        "model_name": state.model_name,
        "champion": None if champion is None else champion.version,
        "challenger": None
        if challenger is None
        else {
            "version": challenger.version,
            "shadow": challenger.shadow,
            "weight": challenger.weight,
        },
        "rollout": rollout,
        "rollout_text": text,
        "frozen": ops.frozen(snap),
        "retrains_24h": len(starts),
        "cooldown_minutes_left": round(cooldown, 1),
        "last_pass": None
        if not passes
        else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(passes[-1].at))
        + " "
        + passes[-1].summary,
        "decisions": [{"version": n.model_version, "summary": n.summary} for n in decisions],
    }
