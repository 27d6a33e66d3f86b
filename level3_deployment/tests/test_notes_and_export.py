"""The routes level 4's loop works through: notes in the history, the prediction log's export,
and the A/B report of one rollout stage (``since``)."""

from __future__ import annotations

import math

from fastapi.testclient import TestClient

from duration_deployment.history import TABLE_ACTIONS, Action
from ladder_testing.router import AUTH, RIDE

NOTE = {
    "kind": "monitor",
    "summary": "no trigger fired",
    "data": {"psi": {"PULocationID": 0.06}, "fired": False},
    "variant": "champion",
    "model_version": "1",
}


def test_a_note_is_history_and_leaves_the_table_alone(router_client: TestClient) -> None:
    client = router_client
    before = client.get("/deployments", headers=AUTH).json()
    answer = client.post("/history", json=NOTE, headers={**AUTH, "X-Actor": "loop"})
    assert answer.status_code == 201, answer.text
    entry = answer.json()
    assert entry["action"] == "note"
    assert entry["actor"] == "loop"
    assert entry["detail"] == "no trigger fired"
    assert entry["note"] == {"kind": "monitor", "summary": "no trigger fired", "data": NOTE["data"]}
    assert entry["revision"] == before["table"]["revision"]
    assert (entry["variant"], entry["model_version"]) == ("champion", "1")
    after = client.get("/deployments", headers=AUTH).json()
    assert after["table"] == before["table"]
    # GET /deployments lists table changes; notes are read from /history.
    assert [e["action"] for e in after["history"]] == [e["action"] for e in before["history"]]
    notes = client.get("/history", params={"kind": "monitor"}, headers=AUTH).json()
    assert notes["count"] == 1
    assert notes["entries"][0]["id"] == entry["id"]
    everything = client.get("/history", headers=AUTH).json()["entries"]
    assert [e["action"] for e in everything][-1] == "note"
    assert client.get("/history", params={"kind": "stage"}, headers=AUTH).json()["count"] == 0
    later = client.get("/history", params={"after_id": entry["id"]}, headers=AUTH).json()
    assert later["count"] == 0
    stage = client.post("/history", json={**NOTE, "kind": "stage"}, headers=AUTH).json()
    # repeated kind and action values: the table changes and the notes of those kinds
    both = client.get(
        "/history", params=[("kind", "stage"), ("kind", "monitor")], headers=AUTH
    ).json()
    assert [e["id"] for e in both["entries"]] == [entry["id"], stage["id"]]
    mixed = client.get(
        "/history", params=[("action", "start"), ("action", "deploy"), ("kind", "stage")],
        headers=AUTH,
    ).json()["entries"]  # fmt: skip
    assert [e["action"] for e in mixed][-1] == "note"
    assert {e["action"] for e in mixed} == {e["action"] for e in before["history"]} | {"note"}
    assert len([e for e in mixed if e["action"] == "note"]) == 1
    bad = client.get("/history", params={"kind": "Bad Kind"}, headers=AUTH)
    assert bad.status_code == 422
    assert "kind" in bad.text


def test_notes_never_start_an_experiment_or_a_rollback(router_client: TestClient) -> None:
    client = router_client
    for i in range(3):
        client.post("/predict", json={**RIDE, "ride_id": f"n-{i}"})
    start = client.get("/ab/report").json()["notes"][0]
    for _ in range(3):
        assert client.post("/history", json=NOTE, headers=AUTH).status_code == 201
    assert client.get("/ab/report").json()["notes"][0] == start
    # The last table change is still the start-up: nothing to roll back to.
    assert client.post("/rollback", headers=AUTH).status_code == 409
    assert set(TABLE_ACTIONS) == {a.value for a in Action} - {"note"}


def test_bad_notes_are_refused_by_field(router_client: TestClient) -> None:
    client = router_client
    cases = [
        ({**NOTE, "kind": "Bad Kind"}, "kind"),
        ({**NOTE, "summary": ""}, "summary"),
        ({**NOTE, "data": {"x": "y" * 70_000}}, "data"),
        ({**NOTE, "model_version": "v1"}, "model_version"),
        ({**NOTE, "extra": 1}, "extra"),
    ]
    for body, field in cases:
        answer = client.post("/history", json=body, headers=AUTH)
        assert answer.status_code == 422, (field, answer.text)
        assert field in answer.text
    assert client.get("/history", params={"kind": "monitor"}, headers=AUTH).json()["count"] == 0


def test_the_export_joins_feedback_and_pages_by_id(router_client: TestClient) -> None:
    client = router_client
    for i in range(6):
        client.post("/predict", json={**RIDE, "ride_id": f"e-{i}"})
    client.post(
        "/feedback",
        json={"actuals": [{"ride_id": f"e-{i}", "duration": 10.0 + i} for i in (1, 3)]},
        headers=AUTH,
    )
    page = client.get("/predictions", headers=AUTH).json()
    assert page["count"] == 6 + page["rows"].__len__() - 6  # rows and count agree
    columns = page["columns"]
    rows = [dict(zip(columns, r, strict=True)) for r in page["rows"]]
    live = [r for r in rows if not r["shadow"]]
    assert [r["ride_id"] for r in live] == [f"e-{i}" for i in range(6)]
    assert [r["actual"] for r in live] == [None, 11.0, None, 13.0, None, None]
    assert all(r["PULocationID"] == RIDE["PULocationID"] for r in live)
    assert all(isinstance(r["prediction"], float) and math.isfinite(r["prediction"]) for r in live)
    labelled = client.get("/predictions", params={"labelled": True}, headers=AUTH).json()
    assert sorted(dict(zip(columns, r, strict=True))["ride_id"] for r in labelled["rows"]) == [
        "e-1",
        "e-3",
    ]
    newest = client.get("/predictions", params={"last": 2, "shadow": False}, headers=AUTH).json()
    assert [dict(zip(columns, r, strict=True))["ride_id"] for r in newest["rows"]] == ["e-4", "e-5"]
    rest = client.get("/predictions", params={"after_id": page["last_id"]}, headers=AUTH).json()
    assert (rest["count"], rest["last_id"]) == (0, 0)
    assert client.get("/predictions", params={"last": 0}, headers=AUTH).status_code == 422
    assert client.get("/predictions", params={"last": 10}).status_code == 401


def test_the_ab_report_of_one_stage_starts_at_since(router_client: TestClient) -> None:
    client = router_client
    for i in range(4):
        client.post("/predict", json={**RIDE, "ride_id": f"s-{i}"})
    note = client.post("/history", json=NOTE, headers=AUTH).json()
    for i in range(4, 10):
        client.post("/predict", json={**RIDE, "ride_id": f"s-{i}"})
    whole = client.get("/ab/report").json()
    stage = client.get("/ab/report", params={"since": note["log_position"]}).json()
    total = sum(v["predictions"] for v in whole["variants"] if not v["shadow"])
    in_stage = sum(v["predictions"] for v in stage["variants"] if not v["shadow"])
    assert (total, in_stage) == (10, 6)
    position = note["log_position"]
    assert stage["notes"][0] == f"window: predictions after log position {position:,} (since=)"
    # A position before the experiment began changes nothing.
    assert client.get("/ab/report", params={"since": 0}).json()["variants"] == whole["variants"]
    assert client.get("/ab/report", params={"since": -1}).status_code == 422
