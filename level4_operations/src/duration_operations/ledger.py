"""The loop's memory is the router's history: the notes it wrote there (and the table changes
the router recorded) say what was retrained, which rollout is open, what was decided and
whether the loop is frozen. Read back at every pass, so a restarted loop continues where it
stopped and never starts a rollout twice.

Note kinds (the ``kind`` of ``POST /history``):

- ``monitor``: one per pass, the triggers' readings and the rollout's;
- ``retrain-started`` / ``retrain``: before and after a retrain (the outcome, data, gate);
- ``stage``: the challenger entered a rollout stage;
- ``decision``: a rollout ended, ``promoted`` or ``rolled back``;
- ``freeze`` / ``unfreeze`` / ``approval``: from ``duration-operate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from duration_operations.retraining import GATE_PASSED

MONITOR = "monitor"
RETRAIN_STARTED = "retrain-started"
RETRAIN = "retrain"
STAGE = "stage"
DECISION = "decision"
FREEZE = "freeze"
UNFREEZE = "unfreeze"
APPROVAL = "approval"
NOTE_KINDS = (MONITOR, RETRAIN_STARTED, RETRAIN, STAGE, DECISION, FREEZE, UNFREEZE, APPROVAL)
PROMOTED, ROLLED_BACK = "promoted", "rolled back"
#: Table actions that place the challenger where it is (its stage starts with the latest).
PLACING_ACTIONS = ("deploy", "weight")
#: The ``X-Actor`` the loop writes its notes as: only its own retrain and decision notes open
#: or close a rollout (anyone with the token can write a note).
LOOP_ACTOR = "duration-operate"


@dataclass(frozen=True)
class Note:
    """A note of the loop's (or a person's) in the history."""

    id: int
    at: float
    kind: str
    summary: str
    data: dict[str, Any]
    model_version: str | None
    actor: str
    log_position: int


@dataclass(frozen=True)
class Ledger:
    """What the history says; see the module docstring.

    Attributes:
        notes: Every note, oldest first.
        table: Every table change (deploy, weight, remove, promote, rollback, guardrail
            rollback, start), oldest first.
    """

    notes: tuple[Note, ...]
    table: tuple[dict[str, Any], ...]

    @classmethod
    def from_history(cls, entries: list[dict[str, Any]]) -> Ledger:
        notes, table = [], []
        for e in entries:
            if e["action"] == "note":
                raw = e.get("note")
                note: dict[str, Any] = raw if isinstance(raw, dict) else {}
                if not isinstance(note.get("data"), dict):  # written by hand, or garbled
                    note = {**note, "data": {}}
                notes.append(
                    Note(
                        id=int(e["id"]),
                        at=float(e["at"]),
                        kind=str(note.get("kind", "")),
                        summary=str(note.get("summary", "")),
                        data=dict(note.get("data") or {}),
                        model_version=e.get("model_version"),
                        actor=str(e.get("actor", "")),
                        log_position=int(e.get("log_position", 0)),
                    )
                )
            else:
                table.append(e)
        return cls(tuple(notes), tuple(table))

    def of(self, *kinds: str) -> list[Note]:
        return [n for n in self.notes if n.kind in kinds]

    @property
    def frozen(self) -> Note | None:
        """The freeze note in force (the latest freeze/unfreeze is a freeze), or None."""
        latest = self.of(FREEZE, UNFREEZE)
        return latest[-1] if latest and latest[-1].kind == FREEZE else None

    def retrain_starts(self, since: float) -> list[Note]:
        """Retrains started at or after Unix time ``since``."""
        return [n for n in self.of(RETRAIN_STARTED) if n.at >= since]

    def decided(self, version: str) -> Note | None:
        return next(
            (
                n
                for n in reversed(self.of(DECISION))
                if n.model_version == version and n.actor == LOOP_ACTOR
            ),
            None,
        )

    def open_rollout(self) -> Note | None:
        """The loop's newest retrain whose version passed the gate and has no decision yet."""
        for note in reversed([n for n in self.of(RETRAIN) if n.actor == LOOP_ACTOR]):
            if note.data.get("outcome") == GATE_PASSED and note.model_version:
                return None if self.decided(note.model_version) else note
        return None

    def drift_onset(self, champion: str) -> int | None:
        """Where the drift the champion is in began: the first log id of the oldest drifted
        window in the unbroken run of monitor passes (newest first) whose drift trigger fired
        for ``champion``; None when the latest pass did not fire. Each pass sees only the k
        latest windows, so the onset has to be remembered from the passes."""
        onset = None
        for note in reversed([n for n in self.of(MONITOR) if n.actor == LOOP_ACTOR]):
            if note.data.get("champion") != champion:
                break
            try:
                drift = next(t for t in note.data["triggers"] if t.get("trigger") == "drift")
                windows = drift["figures"]["windows"] if drift.get("fired") else []
                first = min(int(w["first_id"]) for w in windows) if windows else None
            except (KeyError, TypeError, ValueError, AttributeError, StopIteration):
                first = None  # a note the loop did not write: the run of readings ends here
            if first is None:
                break
            onset = first
        return onset

    def approved(self, version: str) -> Note | None:
        return next((n for n in self.of(APPROVAL) if n.model_version == version), None)

    def placed(self, version: str, variant: str = "challenger") -> dict[str, Any] | None:
        """The latest table change that put ``version`` where it is as ``variant`` (a deploy
        or a weight change), or None if it was never deployed."""
        for e in reversed(self.table):
            if (
                e["action"] in PLACING_ACTIONS
                and e.get("variant") == variant
                and str(e.get("model_version")) == version
            ):
                return dict(e)
        return None

    def champion_since(self, version: str) -> float | None:
        """When ``version`` became the champion it still is (Unix time), None if the history
        does not say."""
        current, since = None, None
        for e in self.table:
            champion = (e.get("table_after") or {}).get("champion") or {}
            now = None if not champion else str(champion.get("model_version"))
            if now != current:
                current, since = now, float(e["at"])
        return since if current == version else None
